/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Table and record printing.
 */
#include "output.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "names.h"

#define CELL_MAX 256

void output_json(const cJSON *j) {
        char *s = cJSON_Print(j);

        if (!s) {
                fprintf(stderr, "corralctl: out of memory\n");
                return;
        }
        puts(s);
        free(s);
}

const char *output_value(const cJSON *object, const char *field, char *buf, size_t size) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(object, field);

        if (!v || cJSON_IsNull(v))
                return "-";
        if (cJSON_IsString(v))
                return v->valuestring;
        if (cJSON_IsBool(v))
                return cJSON_IsTrue(v) ? "yes" : "no";
        if (cJSON_IsNumber(v)) {
                snprintf(buf, size, "%.0f", v->valuedouble);
                return buf;
        }
        char *s = cJSON_PrintUnformatted(v);
        snprintf(buf, size, "%s", s ? s : "?");
        free(s);
        return buf;
}

static int display_width(const char *s) {
        int w = 0;
        for (; *s; s++)
                if (((unsigned char) *s & 0xc0) != 0x80)
                        w++;
        return w;
}

/* Copy a value into a cell: one line, at most max characters (UTF-8 aware), cut with "…". */
static void cell(const char *value, int max, char *out, size_t size) {
        int keep = max > 0 && display_width(value) > max ? max - 1 : -1;
        int chars = 0;
        size_t n = 0;

        for (const char *p = value; *p && n + 4 < size; p++) {
                unsigned char c = (unsigned char) *p;
                if ((c & 0xc0) != 0x80 && keep >= 0 && chars++ == keep)
                        break;
                out[n++] = (c == '\n' || c == '\t' || c == '\r') ? ' ' : (char) c;
        }
        if (keep >= 0) {
                memcpy(out + n, "\xe2\x80\xa6", 3);
                n += 3;
        }
        out[n] = 0;
}

void output_table(const cJSON *array, const Column *columns) {
        int n_cols = 0, widths[16] = {};
        const cJSON *row;
        char buf[CELL_MAX], c[CELL_MAX];

        while (columns[n_cols].header && n_cols < 16)
                n_cols++;
        for (int i = 0; i < n_cols; i++)
                widths[i] = display_width(columns[i].header);
        cJSON_ArrayForEach (row, array)
                for (int i = 0; i < n_cols; i++) {
                        cell(output_value(row, columns[i].field, buf, sizeof(buf)), columns[i].max_width, c, sizeof(c));
                        if (display_width(c) > widths[i])
                                widths[i] = display_width(c);
                }

        for (int i = 0; i < n_cols; i++)
                printf("%-*s%s", i + 1 < n_cols ? widths[i] : 0, columns[i].header, i + 1 < n_cols ? "  " : "\n");
        cJSON_ArrayForEach (row, array)
                for (int i = 0; i < n_cols; i++) {
                        cell(output_value(row, columns[i].field, buf, sizeof(buf)), columns[i].max_width, c, sizeof(c));
                        /* printf pads by bytes: add the bytes that multi-byte characters take beyond one column. */
                        int pad = widths[i] + (int) strlen(c) - display_width(c);
                        printf("%-*s%s", i + 1 < n_cols ? pad : 0, c, i + 1 < n_cols ? "  " : "\n");
                }
        if (cJSON_GetArraySize(array) == 0)
                printf("(none)\n");
}

void output_record(const cJSON *object) {
        const cJSON *m;
        int width = 0;
        char buf[4096];

        cJSON_ArrayForEach (m, object)
                if ((int) strlen(m->string) > width)
                        width = (int) strlen(m->string);
        cJSON_ArrayForEach (m, object)
                printf("%*s: %s\n", width, m->string, output_value(object, m->string, buf, sizeof(buf)));
}

void output_reply(Ctl *ctl, const cJSON *reply) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(reply, "id");

        if (ctl->json)
                output_json(reply);
        else if (ctl->quiet && cJSON_IsString(id))
                puts(id->valuestring);
        else
                output_record(reply);
}

void output_list(Ctl *ctl, cJSON *reply, const Column *columns) {
        if (ctl->json)
                output_json(reply);
        else {
                names_label(ctl, reply, columns);
                output_table(reply, columns);
        }
}
