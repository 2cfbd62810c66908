/* fuzz.h: what the libFuzzer harnesses in tests/fuzz share (header-only): a check that aborts
 * even without sanitizers (so the gcc replay of make check fails on it too), a silent log sink,
 * the source tree's location, and one scratch file per process for loaders that take a path.
 * GPL-3.0-or-later. */
#ifndef CX_FUZZ_H
#define CX_FUZZ_H

/* Include this first: mkstemps, pwrite and ftruncate are POSIX/BSD, not C11. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE 1
#endif

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __cplusplus
extern "C" {
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef __cplusplus
}
#endif

/* An invariant the code under test promises (out-parameters, message texts): abort, which
 * libFuzzer reports as a crash and which fails the replay test. */
#define FUZZ_CHECK(cond)                                                                             \
    do {                                                                                             \
        if (!(cond)) {                                                                               \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond);        \
            abort();                                                                                 \
        }                                                                                            \
    } while (0)

/* 1 when s holds a NUL within its n bytes (fixed-size string fields of result structs). */
#define FUZZ_TERMINATED(s) (memchr((s), 0, sizeof(s)) != NULL)

/* The source tree: $CX_SRCDIR (set by make check and make fuzz), else the one this was
 * configured from. */
static inline const char *fuzz_srcdir(void)
{
    const char *s = getenv("CX_SRCDIR");
#ifdef CX_FUZZ_SRCDIR
    if (!s || !*s)
        s = CX_FUZZ_SRCDIR;
#endif
    return s && *s ? s : ".";
}

/* Skips the whole run (exit 77, the automake SKIP code) when an input the harness needs is not
 * there. */
static inline void fuzz_need_file(const char *path, const char *what)
{
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "fuzz: SKIP: %s %s is not readable\n", what, path);
        exit(77);
    }
}

/* Writes data to this process's scratch file (made once with mkstemps under $TMPDIR, removed
 * at exit) and returns its path; NULL when that fails. suffix keeps loaders that look at the
 * name happy. */
static char fuzz_tmp_path_[4096];
static int fuzz_tmp_fd_ = -1;
static void fuzz_tmp_remove_(void)
{
    if (fuzz_tmp_fd_ >= 0)
        unlink(fuzz_tmp_path_);
}
static inline const char *fuzz_tmp_write(const uint8_t *data, size_t size, const char *suffix)
{
    if (fuzz_tmp_fd_ < 0) {
        const char *dir = getenv("TMPDIR");
        snprintf(fuzz_tmp_path_, sizeof fuzz_tmp_path_, "%s/cxfuzz-XXXXXX%s", dir && *dir ? dir : "/tmp",
                 suffix);
        if ((fuzz_tmp_fd_ = mkstemps(fuzz_tmp_path_, (int)strlen(suffix))) < 0)
            return NULL;
        atexit(fuzz_tmp_remove_);
    }
    if (ftruncate(fuzz_tmp_fd_, 0) != 0)
        return NULL;
    for (size_t done = 0; done < size;) {
        ssize_t w = pwrite(fuzz_tmp_fd_, data + done, size - done, (off_t)done);
        if (w <= 0)
            return NULL;
        done += (size_t)w;
    }
    return fuzz_tmp_path_;
}

#endif
