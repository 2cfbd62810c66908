/* OHIF 3.13.2 configuration for the viewer test: one DICOMweb source (the private Orthanc,
 * proxied by serve.js on the same origin), and nothing that waits for a human: no onboarding
 * tour, no investigational-use dialog, no "track / load?" prompts for SR and SEG. */
window.config = {
  name: 'cxrseg viewer test',
  routerBasename: '/',
  extensions: [],
  modes: [],
  // An empty tour list: the Onboarding component then starts no tour.
  customizationService: [{ 'ohif.tours': { $set: [] } }],
  investigationalUseDialog: { option: 'never' },
  // SEG/RT load without a confirmation; "simplified" tracking loads an SR without asking.
  disableConfirmationPrompts: true,
  measurementTrackingMode: 'simplified',
  showStudyList: true,
  maxNumberOfWebWorkers: 2,
  showWarningMessageForCrossOrigin: false,
  showCPUFallbackMessage: false,
  showLoadingIndicator: true,
  strictZSpacingForVolumeViewport: true,
  maxNumRequests: { interaction: 100, thumbnail: 5, prefetch: 10 },
  showErrorDetails: 'always',
  defaultDataSourceName: 'orthanc',
  dataSources: [
    {
      namespace: '@ohif/extension-default.dataSourcesModule.dicomweb',
      sourceName: 'orthanc',
      configuration: {
        friendlyName: 'cxrseg test Orthanc',
        name: 'orthanc',
        wadoUriRoot: window.location.origin + '/wado',
        qidoRoot: window.location.origin + '/dicom-web',
        wadoRoot: window.location.origin + '/dicom-web',
        // serve.js decodes the %2C that OHIF puts between includefield values.
        qidoSupportsIncludeField: true,
        imageRendering: 'wadors',
        thumbnailRendering: 'wadors',
        enableStudyLazyLoad: true,
        supportsFuzzyMatching: false,
        supportsWildcard: true,
        staticWado: false,
        singlepart: 'bulkdata,video',
        bulkDataURI: { enabled: true, relativeResolution: 'studies' },
        omitQuotationForMultipartRequest: true,
      },
    },
  ],
};
