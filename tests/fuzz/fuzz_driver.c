/* fuzz_driver.c -- runs LLVMFuzzerTestOneInput over files, for builds
 * without libFuzzer (gcc): every argument is a file or a directory whose
 * files (sorted by name) are each one input. Exits 0 when every input ran
 * (a finding aborts), 1 when an argument cannot be read or holds no input. */
#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define DRIVER_INPUT_BYTES_MAX (1u << 20)
#define DRIVER_FILES_MAX 100000u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs one file; returns 0, or -1 when it cannot be read. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz_driver: cannot open %s\n", path);
        return -1;
    }
    uint8_t *buf = malloc(DRIVER_INPUT_BYTES_MAX);
    size_t n = buf ? fread(buf, 1, DRIVER_INPUT_BYTES_MAX, f) : 0;
    fclose(f);
    if (!buf)
        return -1;
    /* A copy of exactly n bytes, so that ASan sees any read past the end. */
    uint8_t *input = malloc(n ? n : 1);
    if (!input) {
        free(buf);
        return -1;
    }
    memcpy(input, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(input, n);
    free(input);
    return 0;
}

static int only_files(const struct dirent *d) { return d->d_name[0] != '.'; }

/* Runs every file of a directory; returns the count, or -1. */
static long run_dir(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, only_files, alphasort);
    if (n < 0) {
        fprintf(stderr, "fuzz_driver: cannot list %s\n", dir);
        return -1;
    }
    long ran = 0;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        struct stat st;
        if (ran < (long)DRIVER_FILES_MAX && stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
            run_file(path) == 0)
            ran++;
        free(names[i]);
    }
    free(names);
    return ran;
}

int main(int argc, char **argv)
{
    long total = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        long ran = stat(argv[i], &st) != 0 ? -1
                   : S_ISDIR(st.st_mode)   ? run_dir(argv[i])
                                           : (run_file(argv[i]) == 0 ? 1 : -1);
        if (ran < 0)
            return 1;
        total += ran;
    }
    printf("fuzz_driver: %ld inputs ran without a finding\n", total);
    return total > 0 ? 0 : 1;
}
