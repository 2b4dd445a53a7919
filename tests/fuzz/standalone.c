/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The fuzz targets without libFuzzer, for make check: each argument is a file (or a
 * directory of files) of the seed corpus and of inputs fuzzing once found, run through the
 * target as a regression test under the build's own sanitizers.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int run_file(const char *path) {
        FILE *f = fopen(path, "rb");
        uint8_t *buf = NULL;
        size_t size = 0, cap = 0, k;

        if (!f) {
                fprintf(stderr, "cannot open %s\n", path);
                return -1;
        }
        do {
                if (size == cap) {
                        uint8_t *t = realloc(buf, (cap = cap ? cap * 2 : 4096));
                        if (!t) {
                                free(buf);
                                fclose(f);
                                return -1;
                        }
                        buf = t;
                }
                k = fread(buf + size, 1, cap - size, f);
                size += k;
        } while (k > 0);
        fclose(f);
        (void) LLVMFuzzerTestOneInput(buf, size);
        free(buf);
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned n = 0;

        for (int i = 1; i < argc; i++) {
                struct stat st;
                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "cannot stat %s\n", argv[i]);
                        return 1;
                }
                if (!S_ISDIR(st.st_mode)) {
                        if (run_file(argv[i]) < 0)
                                return 1;
                        n++;
                        continue;
                }
                DIR *d = opendir(argv[i]);
                struct dirent *de;
                if (!d)
                        return 1;
                while ((de = readdir(d))) {
                        char path[4096];
                        if (de->d_name[0] == '.')
                                continue;
                        snprintf(path, sizeof(path), "%s/%s", argv[i], de->d_name);
                        if (run_file(path) < 0) {
                                closedir(d);
                                return 1;
                        }
                        n++;
                }
                closedir(d);
        }
        printf("1..1\nok 1 - %u input(s) ran without a finding\n", n);
        return n > 0 ? 0 : 1;
}
