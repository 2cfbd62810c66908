/* The reference convolution of the src/nn tests: direct, in double precision, any kernel, stride,
 * padding and dilation. ref[cout][n][oh][ow] = conv(in[cin][n][h][w]) + b (+ add) (then ReLU). */
#ifndef CX_REF_CONV_H
#define CX_REF_CONV_H

#include <stddef.h>

#include "cx_nn.h"

static void cx_ref_conv(const cx_conv *c, const float *in, int n, int h, int w, const float *add, int relu,
                        double *ref)
{
    int oh = cx_conv_out(h, c->kh, c->stride, c->pad, c->dil), ow = cx_conv_out(w, c->kw, c->stride, c->pad, c->dil);
    for (int o = 0; o < c->cout; o++)
        for (int ni = 0; ni < n; ni++)
            for (int y = 0; y < oh; y++)
                for (int x = 0; x < ow; x++) {
                    double s = c->b ? c->b[o] : 0.0;
                    for (int ci = 0; ci < c->cin; ci++)
                        for (int ky = 0; ky < c->kh; ky++) {
                            int iy = y * c->stride - c->pad + ky * c->dil;
                            if (iy < 0 || iy >= h)
                                continue;
                            for (int kx = 0; kx < c->kw; kx++) {
                                int ix = x * c->stride - c->pad + kx * c->dil;
                                if (ix < 0 || ix >= w)
                                    continue;
                                s += (double)c->w[(((size_t)o * c->cin + ci) * c->kh + ky) * c->kw + kx] *
                                     in[(((size_t)ci * n + ni) * h + iy) * w + ix];
                            }
                        }
                    size_t oi = (((size_t)o * n + ni) * oh + y) * ow + x;
                    if (add)
                        s += add[oi];
                    if (relu && s < 0)
                        s = 0;
                    ref[oi] = s;
                }
}

#endif
