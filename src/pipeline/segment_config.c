/* segment_config.c: the one mapping from a loaded configuration (src/config) to the segmentation
 * parameters, used by `cxrseg segment --conf`, the node and the Orthanc plugin. */
#include "segment.h"

#include <stdio.h>

#include "cx_config.h"

cx_status cx_segment_params_from_config(const cx_config *cfg, const char *software_version, cx_segment_params *p,
                                        cx_error *err)
{
    cx_segment_default_params(p);
    const cx_config_outputs *o = &cfg->outputs;
    snprintf(p->write.uid_root, sizeof p->write.uid_root, "%s", o->uid_root ? o->uid_root : "2.25");
    const cx_config_series *ser[4] = {&o->seg, &o->sr, &o->gsps, &o->sc};
    p->write.outputs = 0;
    for (int k = 0; k < 4; k++) {
        if (ser[k]->enabled)
            p->write.outputs |= 1 << k;
        p->write.series_numbers[k] = ser[k]->series_number;
        if (ser[k]->series_description)
            snprintf(p->write.series_descriptions[k], sizeof p->write.series_descriptions[k], "%s",
                     ser[k]->series_description);
    }
    p->write.seg_without_findings = o->seg_when_nothing_found;
    p->write.seg_encoding = o->seg_encoding == CX_SEG_ENCODING_BINARY ? CXD_SEG_BINARY : CXD_SEG_FRACTIONAL;
    p->write.seg_compression = o->seg_compression == CX_SEG_COMPRESSION_RLE ? CXD_SEG_RLE : CXD_SEG_UNCOMPRESSED;
    if (o->manufacturer)
        snprintf(p->write.manufacturer, sizeof p->write.manufacturer, "%s", o->manufacturer);
    if (software_version)
        snprintf(p->write.software_version, sizeof p->write.software_version, "%s", software_version);
    size_t n = cfg->model.threshold_count;
    if (!n)
        return CX_OK;
    const char **names = cx_calloc(n, sizeof *names);
    double *scores = cx_calloc(n, sizeof *scores);
    if (!names || !scores) {
        cx_free(names);
        cx_free(scores);
        return cx_error_set(err, CX_ERR_NOMEM, "config", "out of memory for %zu class thresholds", n);
    }
    for (size_t i = 0; i < n; i++) {
        names[i] = cfg->model.thresholds[i].class_name;
        scores[i] = cfg->model.thresholds[i].score;
    }
    p->n_thresholds = n;
    p->threshold_names = names;
    p->threshold_scores = scores;
    return CX_OK;
}

void cx_segment_params_release(cx_segment_params *p)
{
    if (!p)
        return;
    cx_free((void *)p->threshold_names);
    cx_free((void *)p->threshold_scores);
    p->threshold_names = NULL;
    p->threshold_scores = NULL;
    p->n_thresholds = 0;
}
