/* replay: runs one fuzz harness (linked in) over saved inputs without libFuzzer, so that make
 * check replays every corpus and every crash reproducer with the normal compiler. A crash or a
 * failed FUZZ_CHECK (abort) fails the test.
 *   replay [FILE|DIR]...   each file, and each regular file in each directory (sorted)
 *   replay                 $CX_SRCDIR/tests/fuzz/corpus/<harness> and .../crashes/<harness>
 * Exit 0 when every input ran, 77 (skip) when the corpus is missing, 2 on a usage or read error.
 * GPL-3.0-or-later. */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#ifndef CX_FUZZ_NAME
#error "compile with -DCX_FUZZ_NAME='\"<harness>\"'"
#endif

static long ran;

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) {
            uint8_t *b = realloc(buf, cap *= 2);
            if (!b) {
                free(buf);
                buf = NULL;
            }
            buf = b;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        fprintf(stderr, "replay: %s: %s\n", path, buf ? "read error" : "out of memory");
        free(buf);
        return -1;
    }
    /* libFuzzer hands over exactly n bytes: a copy of that size lets ASan see overreads */
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, n);
    free(buf);
    fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    ran++;
    return 0;
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every regular file in dir, in name order; README files are notes, not inputs. */
static int run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (de->d_name[0] == '.' || !strncmp(de->d_name, "README", 6))
            continue;
        if (n == cap) {
            char **nn = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
            if (!nn) {
                rc = -1;
                break;
            }
            names = nn;
        }
        size_t len = strlen(dir) + strlen(de->d_name) + 2;
        if (!(names[n] = malloc(len))) {
            rc = -1;
            break;
        }
        snprintf(names[n++], len, "%s/%s", dir, de->d_name);
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp);
    for (size_t i = 0; i < n; i++) {
        struct stat st;
        if (rc == 0 && stat(names[i], &st) == 0 && S_ISREG(st.st_mode))
            rc = run_file(names[i]);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int run_path(const char *p)
{
    struct stat st;
    if (stat(p, &st) != 0) {
        fprintf(stderr, "replay: %s: %s\n", p, strerror(errno));
        return -1;
    }
    return S_ISDIR(st.st_mode) ? run_dir(p) : run_file(p);
}

int main(int argc, char **argv)
{
    int rc = 0;
    LLVMFuzzerInitialize(&argc, &argv);
    if (argc > 1) {
        for (int i = 1; i < argc && rc == 0; i++)
            rc = run_path(argv[i]);
    } else {
        char corpus[4096], crashes[4096];
        snprintf(corpus, sizeof corpus, "%s/tests/fuzz/corpus/%s", fuzz_srcdir(), CX_FUZZ_NAME);
        snprintf(crashes, sizeof crashes, "%s/tests/fuzz/crashes/%s", fuzz_srcdir(), CX_FUZZ_NAME);
        struct stat st;
        if (stat(corpus, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "replay: SKIP: no seed corpus %s (set CX_SRCDIR to the source tree)\n", corpus);
            return 77;
        }
        rc = run_dir(corpus);
        if (rc == 0 && stat(crashes, &st) == 0 && S_ISDIR(st.st_mode))
            rc = run_dir(crashes);
    }
    if (rc != 0)
        return 2;
    if (ran == 0) {
        fprintf(stderr, "replay: SKIP: no inputs\n");
        return 77;
    }
    printf("replay %s: %ld inputs, no crash\n", CX_FUZZ_NAME, ran);
    return 0;
}
