/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A scan of a JSON text for what cJSON lets through (json-text.h). It follows the syntax
 * only as far as it needs to know where strings, keys and nesting are; where the syntax is
 * wrong it stops and says nothing, and cJSON reports the error with its position.
 */
#include "basic/json-text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "basic/utf8.h"

/* A scan step: 0 on, SYNTAX stop quietly (the parser reports it), -EINVAL refused. */
#define SYNTAX 1

typedef struct Key {
        char *s; /* decoded, NUL-free (a key with a NUL is refused before it is kept) */
        size_t n;
} Key;

typedef struct Scan {
        const char *p, *end;
        char *msg;
        size_t msg_size;
        /* Where the scan is: per level, the key of the member or the index of the element. */
        unsigned depth;
        const char *key[JSON_TEXT_DEPTH_MAX + 1];
        size_t index[JSON_TEXT_DEPTH_MAX + 1];
} Scan;

/* "field 'a.b[2]'" for the current place, or "the request body" at the top. */
static void place(const Scan *s, char *buf, size_t size) {
        size_t n = 0;

        if (s->depth == 0) {
                snprintf(buf, size, "the request body");
                return;
        }
        n += (size_t) snprintf(buf, size, "field '");
        for (unsigned i = 1; i <= s->depth && n < size; i++) {
                if (s->key[i])
                        n += (size_t) snprintf(buf + n, size - n, "%s%s", i > 1 ? "." : "", s->key[i]);
                else
                        n += (size_t) snprintf(buf + n, size - n, "[%zu]", s->index[i]);
        }
        if (n < size)
                snprintf(buf + n, size - n, "'");
}

/* A buffer snprintf() may have cut inside a UTF-8 sequence (keys are shown in messages
 * that are themselves JSON strings): cut it before that sequence. */
static void cut_utf8(char *buf) {
        buf[utf8_complete_prefix(buf, strlen(buf))] = 0;
}

_printf_(2, 3) static int refuse(Scan *s, const char *format, ...) {
        char where[256], what[256];
        va_list ap;

        place(s, where, sizeof(where));
        va_start(ap, format);
        vsnprintf(what, sizeof(what), format, ap);
        va_end(ap);
        cut_utf8(where);
        cut_utf8(what);
        snprintf(s->msg, s->msg_size, "%s %s", where, what);
        cut_utf8(s->msg);
        return -EINVAL;
}

static void skip_ws(Scan *s) {
        while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
                s->p++;
}

static int hex4(const char *p, unsigned *ret) {
        unsigned v = 0;

        for (int i = 0; i < 4; i++) {
                char c = p[i];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (unsigned) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (unsigned) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (unsigned) (c - 'A' + 10);
                else
                        return SYNTAX;
        }
        *ret = v;
        return 0;
}

static size_t utf8_put(unsigned cp, char out[static 4]) {
        if (cp < 0x80) {
                out[0] = (char) cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char) (0xc0 | (cp >> 6));
                out[1] = (char) (0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char) (0xe0 | (cp >> 12));
                out[1] = (char) (0x80 | ((cp >> 6) & 0x3f));
                out[2] = (char) (0x80 | (cp & 0x3f));
                return 3;
        }
        out[0] = (char) (0xf0 | (cp >> 18));
        out[1] = (char) (0x80 | ((cp >> 12) & 0x3f));
        out[2] = (char) (0x80 | ((cp >> 6) & 0x3f));
        out[3] = (char) (0x80 | (cp & 0x3f));
        return 4;
}

/* The string at s->p (at its opening quote). what says what it is in a refusal ("" for a
 * value, "has a key that " for a key). With ret, its decoded text (malloc'd, NUL-terminated). */
static int scan_string(Scan *s, const char *what, Key *ret) {
        char *out = NULL;
        size_t n = 0;
        int r = 0;

        s->p++; /* the quote */
        if (ret) {
                /* Decoded, a string is never longer than its text. */
                out = malloc((size_t) (s->end - s->p) + 1);
                if (!out)
                        return refuse(s, "could not be checked: out of memory");
        }
        for (;;) {
                const char *run = s->p;

                /* A run of plain bytes: checked as UTF-8 as a whole. */
                while (s->p < s->end && *s->p != '"' && *s->p != '\\' && (unsigned char) *s->p >= 0x20)
                        s->p++;
                if (!utf8_is_valid(run, (size_t) (s->p - run))) {
                        r = refuse(s, "%sis not valid UTF-8", what);
                        goto out;
                }
                if (out) {
                        memcpy(out + n, run, (size_t) (s->p - run));
                        n += (size_t) (s->p - run);
                }
                if (s->p >= s->end) {
                        r = SYNTAX;
                        goto out;
                }
                if (*s->p == '"') {
                        s->p++;
                        break;
                }
                if ((unsigned char) *s->p < 0x20) {
                        r = SYNTAX; /* a raw control character: cJSON says where */
                        goto out;
                }
                /* An escape. */
                if (s->end - s->p < 2) {
                        r = SYNTAX;
                        goto out;
                }
                if (s->p[1] != 'u') {
                        char c = s->p[1];
                        static const char plain[] = "\"\\/bfnrt", decoded[] = "\"\\/\b\f\n\r\t";
                        const char *k = memchr(plain, c, sizeof(plain) - 1);
                        if (!k) {
                                r = SYNTAX;
                                goto out;
                        }
                        if (out)
                                out[n++] = decoded[k - plain];
                        s->p += 2;
                        continue;
                }
                unsigned cp, lo;
                if (s->end - s->p < 6 || hex4(s->p + 2, &cp) != 0) {
                        r = SYNTAX;
                        goto out;
                }
                s->p += 6;
                if (cp == 0) {
                        r = refuse(s, "%sholds a NUL character (\\u0000)", what);
                        goto out;
                }
                if (cp >= 0xdc00 && cp <= 0xdfff) {
                        r = refuse(s, "%sis not valid UTF-8 (a lone surrogate \\u%04x)", what, cp);
                        goto out;
                }
                if (cp >= 0xd800 && cp <= 0xdbff) {
                        if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || hex4(s->p + 2, &lo) != 0 || lo < 0xdc00 ||
                            lo > 0xdfff) {
                                r = refuse(s, "%sis not valid UTF-8 (a lone surrogate \\u%04x)", what, cp);
                                goto out;
                        }
                        s->p += 6;
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                if (out)
                        n += utf8_put(cp, out + n);
        }
out:
        if (r == 0 && ret) {
                out[n] = 0;
                ret->s = out;
                ret->n = n;
                return 0;
        }
        free(out);
        return r;
}

static int key_compare(const void *a, const void *b) {
        const Key *x = a, *y = b;
        int c = memcmp(x->s, y->s, MIN(x->n, y->n));
        return c != 0 ? c : (x->n > y->n) - (x->n < y->n);
}

static int scan_value(Scan *s);

static int scan_object(Scan *s) {
        Key *keys = NULL;
        size_t n_keys = 0, cap = 0;
        int r;

        s->p++; /* { */
        s->depth++;
        skip_ws(s);
        if (s->p < s->end && *s->p == '}') {
                s->p++;
                s->depth--;
                return 0;
        }
        for (;;) {
                skip_ws(s);
                if (s->p >= s->end || *s->p != '"') {
                        r = SYNTAX;
                        goto out;
                }
                if (n_keys == cap) {
                        Key *t = realloc(keys, (cap = cap ? cap * 2 : 8) * sizeof(Key));
                        if (!t) {
                                r = refuse(s, "could not be checked: out of memory");
                                goto out;
                        }
                        keys = t;
                }
                /* The key is named in what follows; it is refused under its object's name. */
                s->key[s->depth] = NULL;
                s->depth--;
                r = scan_string(s, "has a key that ", &keys[n_keys]);
                s->depth++;
                if (r != 0)
                        goto out;
                s->key[s->depth] = keys[n_keys].s;
                n_keys++;
                skip_ws(s);
                if (s->p >= s->end || *s->p != ':') {
                        r = SYNTAX;
                        goto out;
                }
                s->p++;
                r = scan_value(s);
                if (r != 0)
                        goto out;
                skip_ws(s);
                if (s->p < s->end && *s->p == ',') {
                        s->p++;
                        continue;
                }
                if (s->p < s->end && *s->p == '}') {
                        s->p++;
                        break;
                }
                r = SYNTAX;
                goto out;
        }

        /* Equal keys, found by sorting: an object of many keys costs n log n, not n². */
        qsort(keys, n_keys, sizeof(Key), key_compare);
        for (size_t i = 1; i < n_keys; i++)
                if (key_compare(&keys[i - 1], &keys[i]) == 0) {
                        char shown[64];
                        s->depth--;
                        snprintf(shown, sizeof(shown), "%s", keys[i].s);
                        cut_utf8(shown);
                        r = refuse(s, "has the key '%s' more than once", shown);
                        s->depth++;
                        goto out;
                }
        r = 0;
out:
        s->depth--;
        for (size_t i = 0; i < n_keys; i++)
                free(keys[i].s);
        free(keys);
        return r;
}

static int scan_array(Scan *s) {
        int r;

        s->p++; /* [ */
        s->depth++;
        s->key[s->depth] = NULL;
        s->index[s->depth] = 0;
        skip_ws(s);
        if (s->p < s->end && *s->p == ']') {
                s->p++;
                s->depth--;
                return 0;
        }
        for (;;) {
                r = scan_value(s);
                if (r != 0)
                        break;
                skip_ws(s);
                if (s->p < s->end && *s->p == ',') {
                        s->p++;
                        s->index[s->depth]++;
                        continue;
                }
                r = s->p < s->end && *s->p == ']' ? 0 : SYNTAX;
                if (r == 0)
                        s->p++;
                break;
        }
        s->depth--;
        return r;
}

static int scan_value(Scan *s) {
        skip_ws(s);
        if (s->p >= s->end)
                return SYNTAX;
        switch (*s->p) {
        case '"':
                return scan_string(s, "", NULL);
        case '{':
        case '[':
                if (s->depth >= JSON_TEXT_DEPTH_MAX) {
                        snprintf(s->msg, s->msg_size, "the request body is nested deeper than %d levels", JSON_TEXT_DEPTH_MAX);
                        return -EINVAL;
                }
                return *s->p == '{' ? scan_object(s) : scan_array(s);
        default:
                /* A number or a literal: no string in it; the parser checks it. */
                while (s->p < s->end && !strchr(",]} \t\r\n", *s->p))
                        s->p++;
                return 0;
        }
}

int json_text_check(const char *text, size_t size, char *msg, size_t msg_size) {
        Scan s = {
                .p = text,
                .end = text + size,
                .msg = msg,
                .msg_size = msg_size,
        };
        int r;

        if (memchr(text, 0, size)) {
                /* Outside a string a NUL is no JSON; inside, cJSON would end the text there. */
                const char *z = memchr(text, 0, size);
                snprintf(msg, msg_size, "the request body holds a NUL byte at byte %td", z - text);
                return -EINVAL;
        }
        r = scan_value(&s);
        return r < 0 ? r : 0;
}
