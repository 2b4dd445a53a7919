/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* UTF-8 boundaries and validity. */
#include "basic/utf8.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"

size_t utf8_complete_prefix(const char *buf, size_t size) {
        /* Look back at most 3 bytes for the start of a sequence that runs past the end. */
        for (size_t back = 1; back <= 3 && back <= size; back++) {
                unsigned char c = (unsigned char) buf[size - back];
                size_t need;

                if ((c & 0xc0) == 0x80)
                        continue; /* continuation byte: keep looking for the lead */
                if ((c & 0xe0) == 0xc0)
                        need = 2;
                else if ((c & 0xf0) == 0xe0)
                        need = 3;
                else if ((c & 0xf8) == 0xf0)
                        need = 4;
                else
                        return size; /* ASCII or invalid: nothing to hold back */
                return need > back ? size - back : size;
        }
        return size;
}

bool utf8_is_valid(const void *buf, size_t n) {
        const unsigned char *s = buf;
        size_t i = 0;

        while (i < n) {
                unsigned char c = s[i];
                size_t len;
                uint32_t cp;

                if (c < 0x80) {
                        /* Most output is ASCII: skip it eight bytes at a time. */
                        uint64_t w;
                        while (i + 8 <= n && (memcpy(&w, s + i, 8), (w & UINT64_C(0x8080808080808080)) == 0))
                                i += 8;
                        if (i < n && s[i] < 0x80)
                                i++;
                        continue;
                }
                if ((c & 0xe0) == 0xc0) {
                        len = 2;
                        cp = c & 0x1f;
                } else if ((c & 0xf0) == 0xe0) {
                        len = 3;
                        cp = c & 0x0f;
                } else if ((c & 0xf8) == 0xf0) {
                        len = 4;
                        cp = c & 0x07;
                } else
                        return false;
                if (i + len > n)
                        return false;
                for (size_t k = 1; k < len; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (s[i + k] & 0x3f);
                }
                /* Overlong forms, surrogates and code points past U+10FFFF are not UTF-8. */
                if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                i += len;
        }
        return true;
}

/* The length of the sequence at s[0..n), 0 when none starts there. */
static size_t sequence_length(const unsigned char *s, size_t n) {
        size_t len = s[0] < 0x80 ? 1 : (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;

        if (len == 0 || len > n || !utf8_is_valid(s, len) || s[0] == 0)
                return 0;
        return len;
}

char *utf8_lossy(const void *buf, size_t n) {
        const unsigned char *s = buf;
        char *out, *o;

        if (n > (SIZE_MAX - 1) / 3)
                return NULL;
        out = o = malloc(n * 3 + 1); /* each byte at most one U+FFFD, 3 bytes */
        if (!out)
                return NULL;
        for (size_t i = 0; i < n;) {
                size_t len = sequence_length(s + i, n - i);
                if (len == 0) {
                        memcpy(o, "\xef\xbf\xbd", 3);
                        o += 3;
                        i++;
                        continue;
                }
                memcpy(o, s + i, len);
                o += len;
                i += len;
        }
        *o = 0;
        return out;
}
