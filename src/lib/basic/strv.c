/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* String lists. */
#include "basic/strv.h"

#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"

char **strv_free(char **l) {
        for (size_t i = 0; l && l[i]; i++)
                free(l[i]);
        free(l);
        return NULL;
}

size_t strv_length(char *const *l) {
        size_t n = 0;

        while (l && l[n])
                n++;
        return n;
}

bool strv_contains(const char *const *l, const char *s) {
        for (size_t i = 0; l && l[i]; i++)
                if (strcmp(l[i], s) == 0)
                        return true;
        return false;
}

const char *strv_pair_value(char *const *l, const char *name) {
        for (size_t i = 0; l && l[i] && l[i + 1]; i += 2)
                if (strcmp(l[i], name) == 0)
                        return l[i + 1];
        return NULL;
}

int strv_consume(char ***l, char *s) {
        size_t n = strv_length(*l);
        char **t = realloc(*l, (n + 2) * sizeof(char *));

        if (!t) {
                free(s);
                return -ENOMEM;
        }
        t[n] = s;
        t[n + 1] = NULL;
        *l = t;
        return 0;
}

int strv_push(char ***l, const char *s) {
        char *copy = strdup(s);
        return copy ? strv_consume(l, copy) : -ENOMEM;
}

int strv_push_split(char ***l, const char *s) {
        for (const char *t = s, *comma; t && *t; t = comma ? comma + 1 : NULL) {
                comma = strchr(t, ',');
                char *one = strndup(t, comma ? (size_t) (comma - t) : strlen(t));
                if (!one || strv_consume(l, one) < 0)
                        return -ENOMEM;
        }
        return 0;
}
