/* cxrseg render: writes exactly what the engine will see (or, without --size, the windowed image
 * at full size) as a PNG, so a user can check the grey-scale handling of their modality's files
 * before trusting any finding. Goes through the same pipeline code as the node. */
#include "config.h"
#include "cli.h"
#include "cx_image.h"
#include "cx_pipe.h"

#include <string.h>

static const char *CMD = "render";

static void usage(FILE *out)
{
    fputs("Usage: cxrseg render FILE -o OUT.png [options]\n"
          "Writes the image as the engine sees it: modality LUT or rescale, the VOI window or LUT,\n"
          "MONOCHROME1 / presentation LUT inversion, then (with --size) the area-averaged resize.\n"
          "FILE is DICOM, PNG or JPEG (PNG/JPEG are converted to greyscale and not windowed).\n"
          "  -o, --output OUT.png    output file (required)\n"
          "  --size N                resize so that the longest side is N pixels (aspect kept)\n"
          "  --min-size A --max-size B\n"
          "                          resize by the torchvision rule: shorter side A, longer side at most B\n"
          "  --window C,W            use window centre C and width W instead of the file's\n"
          "  --window-index N        use the file's N-th window (1-based; default 1)\n"
          "  --auto                  ignore the file's window/LUT: automatic window (1st..99th\n"
          "                          percentile, ignoring the darkest and brightest value)\n"
          "  --auto-minmax           ignore the file's window/LUT: window = min..max\n"
          "  --no-voi                no VOI: map the full modality range (as dcm2pnm does by default)\n"
          "  --16bit                 write a 16-bit PNG instead of 8-bit\n"
          "Default VOI: the file's first window, else its first VOI LUT, else the automatic window.\n"
          "Prints one line: the output, its size and how it was rendered.\n"
          "Exit codes: 0 ok, 1 usage, 2 unreadable/malformed input or unwritable output, 3 unsupported,\n"
          "6 internal.\n",
          out);
}

enum { OPT_SIZE = 256, OPT_MIN_SIZE, OPT_MAX_SIZE, OPT_WINDOW, OPT_WINDOW_INDEX, OPT_AUTO, OPT_AUTO_MINMAX,
       OPT_NO_VOI, OPT_16BIT };

int cx_cli_render(int argc, char **argv)
{
    static const struct option longs[] = {
        {"help", no_argument, NULL, 'h'}, {"output", required_argument, NULL, 'o'},
        {"size", required_argument, NULL, OPT_SIZE}, {"min-size", required_argument, NULL, OPT_MIN_SIZE},
        {"max-size", required_argument, NULL, OPT_MAX_SIZE}, {"window", required_argument, NULL, OPT_WINDOW},
        {"window-index", required_argument, NULL, OPT_WINDOW_INDEX}, {"auto", no_argument, NULL, OPT_AUTO},
        {"auto-minmax", no_argument, NULL, OPT_AUTO_MINMAX}, {"no-voi", no_argument, NULL, OPT_NO_VOI},
        {"16bit", no_argument, NULL, OPT_16BIT}, {NULL, 0, NULL, 0}};
    const char *in = NULL, *outp = NULL;
    cx_pipe_params p = cx_pipe_default_params();
    int bits = 8, voi_opts = 0, c;
    long v;
    optind = 0;
    while ((c = cx_cli_getopt(CMD, argc, argv, "ho:", longs)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return CX_EXIT_OK;
        case 'o': outp = optarg; break;
        case OPT_SIZE:
        case OPT_MIN_SIZE:
        case OPT_MAX_SIZE:
            if (cx_cli_parse_int(optarg, 1, CX_IMAGE_MAX_SIDE, &v))
                return cx_cli_usage(CMD, "--%s '%s': expected an integer 1..%d",
                                    c == OPT_SIZE ? "size" : c == OPT_MIN_SIZE ? "min-size" : "max-size", optarg,
                                    CX_IMAGE_MAX_SIDE);
            *(c == OPT_SIZE ? &p.fit.longest : c == OPT_MIN_SIZE ? &p.fit.min_size : &p.fit.max_size) = (int)v;
            break;
        case OPT_WINDOW: {
            char buf[128];
            snprintf(buf, sizeof buf, "%s", optarg);
            char *comma = strchr(buf, ',');
            if (!comma)
                return cx_cli_usage(CMD, "--window '%s': expected CENTRE,WIDTH", optarg);
            *comma = 0;
            if (cx_cli_parse_double(buf, &p.center) || cx_cli_parse_double(comma + 1, &p.width))
                return cx_cli_usage(CMD, "--window '%s': expected two numbers CENTRE,WIDTH", optarg);
            p.voi_mode = CX_PIPE_VOI_WINDOW;
            voi_opts++;
            break;
        }
        case OPT_WINDOW_INDEX:
            if (cx_cli_parse_int(optarg, 1, CXD_MAX_WINDOWS, &v))
                return cx_cli_usage(CMD, "--window-index '%s': expected 1..%d", optarg, CXD_MAX_WINDOWS);
            p.window_index = (int)v - 1;
            break;
        case OPT_AUTO_MINMAX: p.auto_method = CX_AUTO_MINMAX; /* fall through */
        case OPT_AUTO:
            p.voi_mode = CX_PIPE_VOI_AUTO;
            voi_opts++;
            break;
        case OPT_NO_VOI:
            p.voi_mode = CX_PIPE_VOI_NONE;
            voi_opts++;
            break;
        case OPT_16BIT: bits = 16; break;
        case 1:
            if (in)
                return cx_cli_usage(CMD, "one FILE expected, got '%s' and '%s'", in, optarg);
            in = optarg;
            break;
        default: return CX_EXIT_USAGE;
        }
    }
    if (!in)
        return cx_cli_usage(CMD, "FILE missing");
    if (!outp)
        return cx_cli_usage(CMD, "-o OUT.png missing");
    if (voi_opts > 1)
        return cx_cli_usage(CMD, "--window, --auto, --auto-minmax and --no-voi exclude each other");
    if (p.fit.longest > 0 && (p.fit.min_size || p.fit.max_size))
        return cx_cli_usage(CMD, "--size excludes --min-size/--max-size");
    if ((p.fit.min_size > 0) != (p.fit.max_size > 0))
        return cx_cli_usage(CMD, "--min-size and --max-size go together");
    if (p.fit.min_size > p.fit.max_size)
        return cx_cli_usage(CMD, "--min-size %d exceeds --max-size %d", p.fit.min_size, p.fit.max_size);

    double t0 = cx_now_ms();
    cx_pipe_image *img = NULL;
    cx_error e = {0};
    cx_status s = cx_pipe_load_file(in, &p, &img, NULL, &e);
    if (s != CX_OK)
        return cx_cli_fail(CMD, &e);
    const cx_image *o = img->input ? img->input : img->display;
    s = cx_image_write_png(outp, o, bits, &e);
    if (s != CX_OK) {
        cx_pipe_image_free(img);
        return cx_cli_fail(CMD, &e);
    }
    double ms = cx_now_ms() - t0;
    printf("wrote %s: %dx%d %d-bit from %s %dx%d; %s; %.0f ms\n", outp, o->width, o->height, bits,
           img->source_kind, img->source_width, img->source_height, img->description, ms);
    cx_pipe_image_free(img);
    return CX_EXIT_OK;
}
