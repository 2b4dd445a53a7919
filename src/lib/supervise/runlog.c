/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Run log ingestion and sanitizing.
 */
#include "supervise/runlog.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/util.h"
#include "basic/utf8.h"
#include "basic/log.h"
#include "shim/shim.h"

_Static_assert(SHIM_TAIL_MAX == RUNLOG_EXCERPT_MAX + RUNLOG_REDACT_MARGIN, "the shim keeps what an excerpt needs");

#define REDACTED "***REDACTED***"
#define IMAGE_MIN_CHARS 1024

int runlog_new(const char *path, uint64_t offset, RunLog **ret) {
        RunLog *l = calloc(1, sizeof(RunLog));

        if (!l)
                return -ENOMEM;
        l->path = strdup(path);
        if (!l->path) {
                free(l);
                return -ENOMEM;
        }
        l->offset = offset;
        if (offset == 0) {
                /* Without it the digest is made by reading the file at the end. */
                l->digest = EVP_MD_CTX_new();
                if (l->digest && EVP_DigestInit_ex(l->digest, EVP_sha256(), NULL) != 1) {
                        EVP_MD_CTX_free(l->digest);
                        l->digest = NULL;
                }
        }
        *ret = l;
        return 0;
}

RunLog *runlog_free(RunLog *l) {
        if (!l)
                return NULL;
        free(l->path);
        free(l->partial);
        free(l->watch_line);
        for (int i = 0; i < 2; i++) {
                free(l->tail[i]);
                free(l->excerpt[i]);
        }
        EVP_MD_CTX_free(l->digest);
        free(l);
        return NULL;
}

const char *runlog_excerpt(RunLog *l, int stream) {
        size_t n = l->tail_size[stream], cut, skip = 0;
        char *e;

        if (!l->excerpt_stale[stream])
                return l->excerpt[stream] ?: "";
        e = malloc(n + 1);
        if (!e)
                return l->excerpt[stream] ?: ""; /* the last one made */
        if (n > 0) /* a stream made empty (runlog_set_tail()) may have no tail at all */
                memcpy(e, l->tail[stream], n);
        e[n] = 0;
        n = runlog_redact(e, n);
        cut = n > RUNLOG_EXCERPT_MAX ? n - RUNLOG_EXCERPT_MAX : 0;
        /* Do not start in the middle of a UTF-8 sequence. */
        while (cut + skip < n && skip < 3 && ((unsigned char) e[cut + skip] & 0xc0) == 0x80)
                skip++;
        cut += skip;
        memmove(e, e + cut, n - cut + 1);
        free(l->excerpt[stream]);
        l->excerpt[stream] = e;
        l->excerpt_stale[stream] = false;
        return e;
}

static size_t base64_decode(const char *in, size_t n, unsigned char *out) {
        static const signed char table[256] = {
                ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
                ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
                ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
                ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
                ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
                ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
                ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
                ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
        };
        uint32_t acc = 0;
        int bits = 0;
        size_t o = 0;

        for (size_t i = 0; i < n; i++) {
                int v = table[(unsigned char) in[i]];
                if (v == 0)
                        continue; /* padding and anything else */
                acc = acc << 6 | (uint32_t) (v - 1);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (unsigned char) (acc >> bits);
                }
        }
        return o;
}

/* Append to a stream's tail, keeping its last RUNLOG_EXCERPT_MAX + RUNLOG_REDACT_MARGIN bytes. */
static int excerpt_append(RunLog *l, int stream, const char *data, size_t size) {
        const size_t max = RUNLOG_EXCERPT_MAX + RUNLOG_REDACT_MARGIN;
        size_t have = l->tail_size[stream], keep;

        if (size == 0)
                return 0;
        if (size >= max) {
                data += size - max;
                size = max;
        }
        keep = MIN(have, max - size);
        if (keep + size > have) {
                /* Grows up to max, then stays there: a quiet run holds little. */
                char *t = realloc(l->tail[stream], keep + size + 1);
                if (!t)
                        return -ENOMEM;
                l->tail[stream] = t;
        }
        memmove(l->tail[stream], l->tail[stream] + have - keep, keep);
        memcpy(l->tail[stream] + keep, data, size);
        l->tail_size[stream] = keep + size;
        l->tail[stream][keep + size] = 0;
        l->excerpt_stale[stream] = true;
        return 0;
}

static bool take(const char **p, const char *end, const char *word) {
        size_t n = strlen(word);

        if ((size_t) (end - *p) < n || memcmp(*p, word, n) != 0)
                return false;
        *p += n;
        return true;
}

static int hex_value(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A line exactly as the shim writes it (shim_format_line()), decoded without a JSON parser,
 * which was a third of corrald's time under a flood of output: 1, or 0 when the line is
 * anything else (cJSON then decides), -ENOMEM. */
static int decode_shim_line(const char *line, size_t size, int *ret_stream, char **ret_data, size_t *ret_size) {
        const char *p = line, *end = line + size, *q;
        _cleanup_free_ char *data = NULL;
        size_t n = 0;
        int stream;

        if (end > p && end[-1] == '\n')
                end--; /* getline() keeps it */

        if (!take(&p, end, "{\"ts\":\""))
                return 0;
        q = memchr(p, '"', (size_t) (end - p));
        if (!q)
                return 0;
        p = q;
        if (!take(&p, end, "\",\"stream\":\""))
                return 0;
        if (take(&p, end, "stdout"))
                stream = 0;
        else if (take(&p, end, "stderr"))
                stream = 1;
        else
                return 0;
        if (!take(&p, end, "\",\"chunk\":\""))
                return 0;
        data = malloc((size_t) (end - p) + 1);
        if (!data)
                return -ENOMEM;
        for (;;) {
                /* A run of bytes that stand for themselves, then an escape or the end. */
                const char *run = p;
                while (p < end && *p != '"' && *p != '\\')
                        p++;
                memcpy(data + n, run, (size_t) (p - run));
                n += (size_t) (p - run);
                if (p >= end)
                        return 0;
                if (*p == '"')
                        break;
                if (end - p < 2)
                        return 0;
                switch (p[1]) {
                case '"':
                case '\\':
                case '/':
                        data[n++] = p[1];
                        p += 2;
                        continue;
                case 'n':
                        data[n++] = '\n';
                        p += 2;
                        continue;
                case 't':
                        data[n++] = '\t';
                        p += 2;
                        continue;
                case 'r':
                        data[n++] = '\r';
                        p += 2;
                        continue;
                case 'u': {
                        /* The shim escapes control characters only: \u00XX. */
                        if (end - p < 6 || p[2] != '0' || p[3] != '0' || hex_value(p[4]) < 0 || hex_value(p[5]) < 0 ||
                            hex_value(p[4]) > 7)
                                return 0;
                        data[n++] = (char) (hex_value(p[4]) << 4 | hex_value(p[5]));
                        p += 6;
                        continue;
                }
                default:
                        return 0;
                }
        }
        p++; /* the closing quote */
        if (take(&p, end, ",\"encoding\":\"base64\"}")) {
                if (p != end)
                        return 0;
                n = base64_decode(data, n, (unsigned char *) data);
        } else if (!take(&p, end, "}") || p != end)
                return 0;
        data[n] = 0;
        *ret_stream = stream;
        *ret_data = TAKE_PTR(data);
        *ret_size = n;
        return 1;
}

/* Decode one log line: stream index and the chunk's bytes (malloc'ed). 0 when the line is
 * not a log line. */
static int decode_line(const char *line, size_t size, int *ret_stream, char **ret_data, size_t *ret_size) {
        int r = decode_shim_line(line, size, ret_stream, ret_data, ret_size);
        if (r != 0)
                return r;

        cJSON *j = cJSON_ParseWithLength(line, size);
        const cJSON *stream, *chunk, *encoding;
        char *data;
        size_t n;

        stream = cJSON_GetObjectItemCaseSensitive(j, "stream");
        chunk = cJSON_GetObjectItemCaseSensitive(j, "chunk");
        encoding = cJSON_GetObjectItemCaseSensitive(j, "encoding");
        if (!cJSON_IsString(stream) || !cJSON_IsString(chunk)) {
                cJSON_Delete(j);
                return 0;
        }
        n = strlen(chunk->valuestring);
        data = malloc(n + 1);
        if (!data) {
                cJSON_Delete(j);
                return -ENOMEM;
        }
        if (cJSON_IsString(encoding) && streq(encoding->valuestring, "base64"))
                n = base64_decode(chunk->valuestring, n, (unsigned char *) data);
        else
                memcpy(data, chunk->valuestring, n);
        data[n] = 0;
        *ret_stream = streq(stream->valuestring, "stderr") ? 1 : 0;
        cJSON_Delete(j);
        *ret_data = data;
        *ret_size = n;
        return 1;
}

int runlog_seed_excerpt(RunLog *l, int stream, const char *text) {
        return excerpt_append(l, stream, text, strlen(text));
}

/* A chunk of a stream into its tail, compacted as what corrald keeps is. */
static int tail_append(RunLog *l, int stream, const char *data, size_t size) {
        _cleanup_free_ char *compact = NULL;
        size_t csize;

        compact = runlog_compact(data, size, RUNLOG_CHUNK_LIMIT, &csize);
        if (!compact)
                return -ENOMEM;
        return excerpt_append(l, stream, compact, csize);
}

static int ingest_line(RunLog *l, const char *line, size_t size) {
        _cleanup_free_ char *data = NULL;
        size_t n;
        int stream, r;

        r = decode_line(line, size, &stream, &data, &n);
        if (r <= 0) {
                if (r == 0)
                        l->bad_lines++;
                return r;
        }
        r = tail_append(l, stream, data, n);
        if (r < 0)
                return r;
        l->chunks++;
        return 1;
}

int runlog_for_each_chunk(const char *path, RunLogChunkFn cb, void *userdata) {
        FILE *f = fopen(path, "re");
        char *line = NULL;
        size_t allocated = 0;
        ssize_t n;
        int r = 0;

        if (!f)
                return -errno;
        while ((n = getline(&line, &allocated, f)) > 0) {
                _cleanup_free_ char *data = NULL;
                size_t size;
                int stream;

                r = decode_line(line, (size_t) n, &stream, &data, &size);
                if (r < 0)
                        break;
                if (r == 0)
                        continue;
                r = cb(stream, data, size, userdata);
                if (r < 0)
                        break;
        }
        free(line);
        fclose(f);
        return r < 0 ? r : 0;
}

static void digest_update(RunLog *l, const char *data, size_t size) {
        if (l->digest && EVP_DigestUpdate(l->digest, data, size) != 1) {
                /* The final digest reads the file instead. */
                EVP_MD_CTX_free(l->digest);
                l->digest = NULL;
        }
        l->digested += size;
}

/* Read what the log has past *offset, up to max bytes, a buffer at a time to fn (which may
 * fail the read); *offset moves past what was read. 1 when more may be there, 0 at the end,
 * -errno. Both followers of a live run's log (the digest, the watcher) read it so. */
static int read_appended(RunLog *l, uint64_t *offset, size_t max,
                         int (*fn)(RunLog *l, const char *data, size_t size, void *userdata), void *userdata) {
        _cleanup_close_ int fd = -EBADF;
        char buf[65536];
        size_t done = 0;
        int r;

        fd = open(l->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        while (done < max) {
                ssize_t k = pread(fd, buf, MIN(sizeof(buf), max - done), (off_t) *offset);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        return 0;
                *offset += (uint64_t) k;
                done += (size_t) k;
                r = fn(l, buf, (size_t) k, userdata);
                if (r < 0)
                        return r;
        }
        return 1;
}

static int digest_buffer(RunLog *l, const char *data, size_t size, void *userdata) {
        /* digest_update() counts l->digested itself: read_appended() was given a copy. */
        digest_update(l, data, size);
        return 0;
}

int runlog_follow(RunLog *l, size_t max) {
        uint64_t offset = l->digested;

        if (!l->digest)
                return 0;
        return read_appended(l, &offset, max, digest_buffer, NULL);
}

/* A complete line of the watched log, with its newline, to cb. */
static int watch_line_end(RunLog *l, RunLogChunkFn cb, void *userdata) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int stream, r;

        if (l->watch_overlong) {
                l->watch_overlong = false;
                return 0;
        }
        r = decode_line(l->watch_line, l->watch_line_size, &stream, &data, &size);
        l->watch_line_size = 0;
        if (r <= 0)
                return r;
        return cb(stream, data, size, userdata);
}

typedef struct Watcher {
        RunLogChunkFn cb;
        void *userdata;
} Watcher;

/* A buffer of the watched log: cut into lines, each complete one decoded to the watcher. */
static int watch_buffer(RunLog *l, const char *data, size_t size, void *userdata) {
        const Watcher *w = userdata;
        int r;

        for (const char *p = data, *end = data + size; p < end;) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = (nl ? (size_t) (nl + 1 - p) : (size_t) (end - p));

                if (!l->watch_overlong && l->watch_line_size + n > RUNLOG_LINE_MAX) {
                        l->watch_overlong = true;
                        l->watch_line_size = 0;
                }
                if (!l->watch_overlong) {
                        if (l->watch_line_size + n > l->watch_line_allocated) {
                                size_t a = MAX(l->watch_line_allocated * 2, l->watch_line_size + n);
                                char *t = realloc(l->watch_line, a);
                                if (!t)
                                        return -ENOMEM;
                                l->watch_line = t;
                                l->watch_line_allocated = a;
                        }
                        memcpy(l->watch_line + l->watch_line_size, p, n);
                        l->watch_line_size += n;
                }
                p += n;
                if (nl && (r = watch_line_end(l, w->cb, w->userdata)) < 0)
                        return r;
        }
        return 0;
}

int runlog_watch(RunLog *l, size_t max, RunLogChunkFn cb, void *userdata) {
        Watcher w = { .cb = cb, .userdata = userdata };

        return read_appended(l, &l->watched, max, watch_buffer, &w);
}

int runlog_refresh_tail(RunLog *l) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        bool seen[2] = {};
        struct stat st;
        off_t from;
        ssize_t k;
        size_t start = 0;

        fd = open(l->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        from = st.st_size > RUNLOG_TAIL_WINDOW ? st.st_size - RUNLOG_TAIL_WINDOW : 0;
        buf = malloc(RUNLOG_TAIL_WINDOW);
        if (!buf)
                return -ENOMEM;
        do
                k = pread(fd, buf, RUNLOG_TAIL_WINDOW, from);
        while (k < 0 && errno == EINTR);
        if (k < 0)
                return -errno;
        if (from > 0) {
                /* The window starts inside a line: from the next one. */
                char *nl = memchr(buf, '\n', (size_t) k);
                start = nl ? (size_t) (nl - buf) + 1 : (size_t) k;
        }
        for (char *nl; start < (size_t) k && (nl = memchr(buf + start, '\n', (size_t) k - start));
             start = (size_t) (nl - buf) + 1) {
                _cleanup_free_ char *data = NULL;
                size_t n;
                int stream;

                if (decode_line(buf + start, (size_t) (nl - buf) - start, &stream, &data, &n) <= 0)
                        continue;
                if (!seen[stream]) {
                        /* What the window shows replaces what an earlier one did. */
                        l->tail_size[stream] = 0;
                        seen[stream] = true;
                }
                if (tail_append(l, stream, data, n) < 0)
                        return -ENOMEM;
        }
        return 0;
}

int runlog_set_tail(RunLog *l, int stream, const char *data, size_t size) {
        l->tail_size[stream] = 0;
        l->excerpt_stale[stream] = true;
        return tail_append(l, stream, data, size);
}

int runlog_ingest_all(RunLog *l) {
        for (int i = 0; i < 2; i++) {
                l->tail_size[i] = 0;
                l->excerpt_stale[i] = true;
        }
        l->offset = 0;
        l->partial_size = 0;
        return runlog_ingest(l);
}

int runlog_ingest(RunLog *l) {
        _cleanup_close_ int fd = -EBADF;
        char buf[65536];
        int new_chunks = 0, r;

        fd = open(l->path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;

        for (;;) {
                uint64_t at = l->offset + l->partial_size;
                ssize_t k = pread(fd, buf, sizeof(buf), (off_t) at);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                if (at <= l->digested && at + (uint64_t) k > l->digested) {
                        /* Bytes runlog_follow() has not hashed yet. */
                        size_t skip = (size_t) (l->digested - at);
                        digest_update(l, buf + skip, (size_t) k - skip);
                }
                size_t start = 0;
                for (size_t i = 0; i < (size_t) k; i++) {
                        if (buf[i] != '\n')
                                continue;
                        const char *line = buf + start;
                        size_t len = i - start;
                        if (l->partial_size > 0) {
                                /* The line began in an earlier read. */
                                char *t = realloc(l->partial, l->partial_size + len);
                                if (!t)
                                        return -ENOMEM;
                                memcpy(t + l->partial_size, line, len);
                                l->partial = t;
                                r = ingest_line(l, l->partial, l->partial_size + len);
                                l->offset += l->partial_size + len + 1;
                                l->partial_size = 0;
                        } else {
                                r = ingest_line(l, line, len);
                                l->offset += len + 1;
                        }
                        if (r < 0)
                                return r;
                        new_chunks += r;
                        start = i + 1;
                }
                if (start < (size_t) k) {
                        size_t len = (size_t) k - start;
                        if (l->partial_size + len > RUNLOG_LINE_MAX) {
                                /* Not a line the shim writes: skip it rather than grow forever. */
                                l->offset += l->partial_size + len;
                                l->partial_size = 0;
                                l->bad_lines++;
                                continue;
                        }
                        char *t = realloc(l->partial, l->partial_size + len);
                        if (!t)
                                return -ENOMEM;
                        memcpy(t + l->partial_size, buf + start, len);
                        l->partial = t;
                        l->partial_size += len;
                }
        }
        return new_chunks;
}

static void hex_digest(const unsigned char *md, unsigned md_len, char ret[static 65]) {
        hex_encode(md, MIN(md_len, 32u), ret);
}

int runlog_digest(const char *path, uint64_t *ret_size, char ret_sha256[static 65]) {
        _cleanup_close_ int fd = -EBADF;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;
        uint64_t size = 0;
        char buf[65536];
        EVP_MD_CTX *ctx;
        int r = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        ctx = EVP_MD_CTX_new();
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
                EVP_MD_CTX_free(ctx);
                return -ENOMEM;
        }
        for (;;) {
                ssize_t k = read(fd, buf, sizeof(buf));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        break;
                }
                if (k == 0)
                        break;
                EVP_DigestUpdate(ctx, buf, (size_t) k);
                size += (uint64_t) k;
        }
        if (r >= 0 && EVP_DigestFinal_ex(ctx, md, &md_len) != 1)
                r = -EIO;
        EVP_MD_CTX_free(ctx);
        if (r < 0)
                return r;
        hex_digest(md, md_len, ret_sha256);
        *ret_size = size;
        return 0;
}

int runlog_digest_final(RunLog *l, uint64_t *ret_size, char ret_sha256[static 65]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;
        struct stat st;

        /* Usable only if every byte there is was hashed. */
        (void) runlog_follow(l, SIZE_MAX);
        if (!l->digest || stat(l->path, &st) < 0 || (uint64_t) st.st_size != l->digested ||
            EVP_DigestFinal_ex(l->digest, md, &md_len) != 1)
                return runlog_digest(l->path, ret_size, ret_sha256);
        EVP_MD_CTX_free(l->digest);
        l->digest = NULL;
        hex_digest(md, md_len, ret_sha256);
        *ret_size = l->digested;
        return 0;
}

static bool is_base64_char(char c) {
        return isalnum((unsigned char) c) || c == '+' || c == '/' || c == '=';
}

char *runlog_compact(const char *chunk, size_t size, size_t limit, size_t *ret_size) {
        static const char data_key[] = "\"data\":\"";
        char *out = malloc(size + 1), *w;
        size_t i = 0;

        if (!out)
                return NULL;
        w = out;
        /* Inline base64 images: {"type":"image","source":{"type":"base64",...,"data":"..."}}. */
        while (i < size) {
                const char *found = memmem(chunk + i, size - i, data_key, sizeof(data_key) - 1);
                if (!found) {
                        memcpy(w, chunk + i, size - i);
                        w += size - i;
                        break;
                }
                size_t at = (size_t) (found - chunk) + sizeof(data_key) - 1, end = at;
                while (end < size && is_base64_char(chunk[end]))
                        end++;
                size_t window = at > 256 ? at - 256 : 0;
                bool image = end - at >= IMAGE_MIN_CHARS && memmem(chunk + window, at - window, "\"base64\"", 8);
                memcpy(w, chunk + i, at - i);
                w += at - i;
                if (image) {
                        char marker[64];
                        int n = snprintf(marker, sizeof(marker), "[omitted base64 image data: %zu chars]", end - at);
                        /* The marker is never longer than what it replaces (1024+ chars). */
                        memcpy(w, marker, (size_t) n);
                        w += n;
                } else {
                        memcpy(w, chunk + at, end - at);
                        w += end - at;
                }
                i = end;
        }
        *w = 0;
        size = (size_t) (w - out);

        if (size > limit) {
                size_t head = limit * 60 / 100, tail = limit * 25 / 100;
                char marker[96];
                int m = snprintf(marker, sizeof(marker), "\n[corral truncated run log chunk: omitted %zu chars]\n",
                                 size - head - tail);
                char *t = malloc(head + (size_t) m + tail + 1);
                if (!t) {
                        free(out);
                        return NULL;
                }
                memcpy(t, out, head);
                memcpy(t + head, marker, (size_t) m);
                memcpy(t + head + (size_t) m, out + size - tail, tail);
                size = head + (size_t) m + tail;
                t[size] = 0;
                free(out);
                out = t;
        }
        *ret_size = size;
        return out;
}

/* Overwrite text[from, to) with REDACTED; returns the new length. */
static size_t replace(char *text, size_t size, size_t from, size_t to) {
        size_t r = sizeof(REDACTED) - 1;

        if (to - from < r) {
                /* Never grow the text: a short secret is blanked with stars. */
                memset(text + from, '*', to - from);
                return size;
        }
        memcpy(text + from, REDACTED, r);
        memmove(text + from + r, text + to, size - to);
        size -= (to - from) - r;
        text[size] = 0;
        return size;
}

static bool secret_char(char c) {
        return c && !isspace((unsigned char) c) && c != '"' && c != '\'' && c != ',' && c != '}' && c != '&';
}

/* Does s start with word (lower case, two letters or more), ignoring case? */
static bool ieq_prefix(const char *s, const char *end, const char *word) {
        size_t n = strlen(word);
        return (size_t) (end - s) >= n && tolower((unsigned char) s[1]) == word[1] && strncasecmp(s, word, n) == 0;
}

size_t runlog_redact(char *text, size_t size) {
        static const char *const key_words[] = { "api_key", "apikey", "api-key", "token", "secret", "password" };
        char *end = text + size;

        for (char *p = text; p < end; p++) {
                char *v = NULL, c = (char) tolower((unsigned char) *p);

                /* Every pattern starts with one of these letters: most positions are done at once
                 * (this runs over every byte an agent prints). */
                if (c != 'a' && c != 'b' && c != 'p' && c != 's' && c != 't')
                        continue;
                /* "Bearer <token>" */
                if (c == 'b' && ieq_prefix(p, end, "bearer ") && (p == text || !isalnum((unsigned char) p[-1])))
                        v = p + 7;
                /* KEY=value, KEY: value, "key": "value", --x-api-key=value, where KEY names a secret. */
                else
                        for (size_t k = 0; k < ELEMENTSOF(key_words) && !v; k++) {
                                if (key_words[k][0] != c || !ieq_prefix(p, end, key_words[k]))
                                        continue;
                                char *q = p + strlen(key_words[k]);
                                /* The key word ends the identifier (API_KEY, x-api-key, apiKey). */
                                if (q < end && (isalnum((unsigned char) *q) || *q == '_'))
                                        continue;
                                while (q < end && (*q == '"' || *q == '\''))
                                        q++;
                                while (q < end && *q == ' ')
                                        q++;
                                if (q >= end || (*q != '=' && *q != ':'))
                                        continue;
                                q++;
                                while (q < end && (*q == ' ' || *q == '"' || *q == '\''))
                                        q++;
                                v = q;
                        }
                if (!v || v >= end)
                        continue;
                char *e = v;
                while (e < end && secret_char(*e))
                        e++;
                if (e - v < 4 || ((size_t) (e - v) == strlen(REDACTED) && strncmp(v, REDACTED, strlen(REDACTED)) == 0))
                        continue;
                size = replace(text, size, (size_t) (v - text), (size_t) (e - text));
                end = text + size;
                p = v;
        }
        return size;
}

int runlog_read(const char *path, int64_t offset, size_t limit, char **ret, size_t *ret_read, size_t *ret_size) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        ssize_t n;
        size_t len;

        if (offset < 0 || limit == 0 || limit == SIZE_MAX)
                return -EINVAL;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        buf = malloc(limit + 1);
        if (!buf)
                return -ENOMEM;
        n = pread(fd, buf, limit, (off_t) offset);
        if (n < 0)
                return -errno;
        len = (size_t) n;
        if (len == limit) {
                char *nl = memrchr(buf, '\n', len);
                len = nl ? (size_t) (nl - buf) + 1 : utf8_complete_prefix(buf, len);
        }
        buf[len] = 0;
        *ret = TAKE_PTR(buf);
        *ret_read = (size_t) n;
        *ret_size = len;
        return 0;
}
