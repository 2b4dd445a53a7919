/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The run log: incremental ingestion of the log.ndjson the shim writes
 * (design §4.6), stdout/stderr excerpts, compaction and credential redaction of
 * what corrald stores and shows, and the size and SHA-256 of the final file where the
 * shim did not give them.
 * The file itself is never changed: it holds the agent's exact bytes.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RUNLOG_EXCERPT_MAX (32 * 1024)
/* Output kept before an excerpt's start, so that a credential whose key word is there is
 * still found when its value reaches into the excerpt. */
#define RUNLOG_REDACT_MARGIN (4 * 1024)
#define RUNLOG_CHUNK_LIMIT (64 * 1024)
#define RUNLOG_LINE_MAX (8 * 1024 * 1024)
/* How much of the log's end a live run's excerpts are made from. */
#define RUNLOG_TAIL_WINDOW (128 * 1024)

typedef struct RunLog {
        char *path;
        uint64_t offset; /* bytes of complete lines ingested */
        char *partial; /* an incomplete last line, kept until its newline arrives */
        size_t partial_size;
        /* stdout, stderr: the last RUNLOG_EXCERPT_MAX + RUNLOG_REDACT_MARGIN bytes, compacted.
         * Redaction runs when an excerpt is asked for, over this tail, not over every byte
         * an agent prints: only the excerpt is kept. */
        char *tail[2];
        size_t tail_size[2];
        char *excerpt[2]; /* the tail redacted and cut to RUNLOG_EXCERPT_MAX, made when asked for */
        bool excerpt_stale[2];
        uint64_t chunks;
        uint64_t bad_lines;
        /* SHA-256 of the file as it is read, from its first byte: the final digest needs no
         * second pass over a log that may be gigabytes. NULL when ingestion started past the
         * beginning (after a restart). */
        struct evp_md_ctx_st *digest;
        uint64_t digested;
        /* runlog_watch(): how far the watcher read, and the line it is in. */
        uint64_t watched;
        char *watch_line;
        size_t watch_line_size, watch_line_allocated;
        bool watch_overlong; /* the line is past RUNLOG_LINE_MAX: skipped to its end */
} RunLog;

int runlog_new(const char *path, uint64_t offset, RunLog **ret);
RunLog *runlog_free(RunLog *l);

/* Read what was appended since the last call. Returns the number of new chunks (0 when
 * nothing new), or -errno. A missing file counts as empty. */
int runlog_ingest(RunLog *l);

/* The same from the log's first byte, the excerpts made again from all of it. */
int runlog_ingest_all(RunLog *l);

/* Hash up to max bytes appended since the last call (or runlog_ingest()): 1 when more may
 * be there, 0 at the end, -errno. A live run's log is hashed by its shim as it writes it
 * (status.json); this is for a log whose shim did not. */
int runlog_follow(RunLog *l, size_t max);

typedef int (*RunLogChunkFn)(int stream, const char *data, size_t size, void *userdata);

/* Output as it is written, for a watcher that must read it while the run lives (the
 * budget module's, following what a CLI says it spent): the chunks of the log lines
 * complete since the last call, decoded, to cb, reading at most max bytes of the file. 1
 * when more may be there, 0 at the end, -errno (or what cb returned, when negative). */
int runlog_watch(RunLog *l, size_t max, RunLogChunkFn cb, void *userdata);

/* Excerpts of a live run, from the last RUNLOG_TAIL_WINDOW bytes of its log: a stream that
 * wrote nothing there keeps what it had. */
int runlog_refresh_tail(RunLog *l);

/* The stream's excerpt from its tail as the shim kept it (raw bytes, SHIM_TAIL_MAX at most). */
int runlog_set_tail(RunLog *l, int stream, const char *data, size_t size);

/* Start an excerpt with text kept from before (after a restart). */
int runlog_seed_excerpt(RunLog *l, int stream, const char *text);

/* The excerpt of "stdout" (0) or "stderr" (1): the last RUNLOG_EXCERPT_MAX bytes, compacted
 * and redacted, starting on a character boundary, NUL-terminated (never NULL). Valid until
 * the next call on this log. */
const char *runlog_excerpt(RunLog *l, int stream);

/* Call cb for every chunk of the log file, decoded (base64 chunks as their bytes), in order.
 * stream is 0 for stdout, 1 for stderr. Lines that are not log lines are skipped. */
int runlog_for_each_chunk(const char *path, RunLogChunkFn cb, void *userdata);

/* Size and SHA-256 (lower-case hex) of a file. */
int runlog_digest(const char *path, uint64_t *ret_size, char ret_sha256[static 65]);
/* The same for the log's file once nothing writes it any more: from what ingestion hashed
 * when it read the whole file, else by reading it. */
int runlog_digest_final(RunLog *l, uint64_t *ret_size, char ret_sha256[static 65]);

/* Up to limit bytes of the log at path from offset (GET .../log): whole lines when the limit
 * cuts one, a single longer line cut on a character boundary. *ret gets the text, NUL
 * terminated, *ret_read how much was read, *ret_size how much of that is kept. -ENOENT when
 * there is no log. */
int runlog_read(const char *path, int64_t offset, size_t limit, char **ret, size_t *ret_read, size_t *ret_size);

/* Sanitizing what corrald keeps: */
/* Replace inline base64 image payloads of 1024+ characters with a marker; then, if the
 * text is still longer than limit, keep the first 60% and the last 25% around a marker. */
char *runlog_compact(const char *chunk, size_t size, size_t limit, size_t *ret_size);
/* Replace credentials (Bearer tokens, *_API_KEY=..., "apiKey": "...", --x-api-key=...) with
 * ***REDACTED***, in place; returns the new length. */
size_t runlog_redact(char *text, size_t size);
