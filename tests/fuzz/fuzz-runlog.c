/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Log ingestion: the input is a run's log.ndjson as an agent's shim may have left it (any
 * bytes), ingested, excerpted, digested, read back and walked chunk by chunk; and the same
 * bytes through compaction and redaction, as excerpts and the log route use them.
 */
#include "fuzz.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "supervise/runlog.h"

static int count_chunk(int stream, const char *data, size_t size, void *userdata) {
        (*(size_t *) userdata) += size;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char path[64], sha[65], *text = NULL;
        size_t n = 0, got, kept;
        uint64_t total;
        RunLog *l = NULL;
        int fd = memfd_create("fuzz-log", MFD_CLOEXEC);

        if (fd < 0)
                return 0;
        if (write(fd, data, size) != (ssize_t) size) {
                close(fd);
                return 0;
        }
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        if (runlog_new(path, 0, &l) >= 0) {
                (void) runlog_ingest(l);
                (void) runlog_excerpt(l, 0);
                (void) runlog_excerpt(l, 1);
                (void) runlog_digest_final(l, &total, sha);
                runlog_free(l);
        }
        (void) runlog_for_each_chunk(path, count_chunk, &n);
        if (runlog_read(path, 0, 4096, &text, &got, &kept) >= 0)
                free(text);
        close(fd);

        char *copy = malloc(size + 1);
        if (copy) {
                memcpy(copy, data, size);
                copy[size] = 0;
                (void) runlog_redact(copy, size);
                free(copy);
        }
        char *compact = runlog_compact((const char *) data, size, 2048, &kept);
        free(compact);
        return 0;
}
