/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one place corralctl talks HTTP.
 */
#include "client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/util.h"

#define REPLY_MAX (256 * 1024 * 1024)

typedef struct Buffer {
        char *data;
        size_t size;
        bool overflow;
} Buffer;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
        Buffer *b = userdata;
        size_t n = size * nmemb;
        char *t;

        if (b->size + n > REPLY_MAX) {
                b->overflow = true;
                return 0;
        }
        t = realloc(b->data, b->size + n + 1);
        if (!t)
                return 0;
        memcpy(t + b->size, ptr, n);
        b->data = t;
        b->size += n;
        b->data[b->size] = 0;
        return n;
}

char *client_escape(const char *s) {
        char *e = curl_easy_escape(NULL, s, 0), *r;

        if (!e)
                return NULL;
        r = strdup(e);
        curl_free(e);
        return r;
}

/* Turn the outcome of a transfer into an exit code and the decoded reply. */
static int interpret(Ctl *ctl, CURL *curl, CURLcode rc, const char *errbuf, const Buffer *reply, cJSON **ret_reply) {
        const cJSON *error;
        long status = 0;
        cJSON *json;

        if (rc != CURLE_OK) {
                long os_errno = 0;
                curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &os_errno);
                if (rc == CURLE_COULDNT_CONNECT && os_errno > 0)
                        fprintf(stderr, "corralctl: cannot reach corrald at %s: %s\n", ctl->socket_path,
                                strerror((int) os_errno));
                else
                        fprintf(stderr, "corralctl: cannot reach corrald at %s: %s\n", ctl->socket_path,
                                *errbuf ? errbuf : curl_easy_strerror(rc));
                return EXIT_UNREACHABLE;
        }
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);

        json = reply->size > 0 ? cJSON_Parse(reply->data) : NULL;
        if (reply->size > 0 && !json) {
                fprintf(stderr, "corralctl: corrald sent a reply that is not JSON (HTTP %ld)\n", status);
                return EXIT_API_ERROR;
        }
        if (status < 200 || status >= 300) {
                error = cJSON_GetObjectItemCaseSensitive(json, "error");
                if (!ctl->quiet_errors)
                        fprintf(stderr, "corralctl: %s (HTTP %ld)\n",
                                cJSON_IsString(error) ? error->valuestring : "request failed", status);
                cJSON_Delete(json);
                return EXIT_API_ERROR;
        }
        *ret_reply = json;
        return EXIT_OK;
}

/* The Next-Cursor header of a reply, kept (lists page with it). */
static size_t on_header(char *line, size_t size, size_t nitems, void *userdata) {
        char **cursor = userdata;
        size_t n = size * nitems;
        static const char name[] = "next-cursor:";

        if (n > sizeof(name) - 1 && strncasecmp(line, name, sizeof(name) - 1) == 0) {
                const char *v = line + sizeof(name) - 1;
                size_t len = n - (sizeof(name) - 1);
                while (len > 0 && (*v == ' ' || *v == '\t'))
                        v++, len--;
                while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
                        len--;
                free(*cursor);
                *cursor = strndup(v, len);
        }
        return n;
}

/* With CORRAL_RECORD_ANSWERS=DIR, each answer is also written to a file of its own in DIR:
 * "METHOD PATH STATUS CONTENT-TYPE", a newline, the body. It is for checking what a client
 * was given against the API's OpenAPI document (corralctl(1), ENVIRONMENT); a failure to
 * write it changes nothing else. */
static void record_answer(CURL *curl, const char *method, const char *path, const Buffer *reply) {
        const char *dir = getenv("CORRAL_RECORD_ANSWERS");
        _cleanup_free_ char *name = NULL;
        const char *ctype = NULL;
        long status = 0;
        FILE *f;
        int fd;

        if (isempty(dir))
                return;
        name = strprintf("%s/corralctl.XXXXXX", dir);
        if (!name || (fd = mkstemp(name)) < 0)
                return;
        f = fdopen(fd, "w");
        if (!f) {
                close(fd);
                return;
        }
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ctype);
        fprintf(f, "%s %s %03ld %s\n", method, path, status, strempty(ctype));
        if (reply->size > 0)
                fwrite(reply->data, 1, reply->size, f);
        fclose(f);
}

static int call(Ctl *ctl, const char *method, const char *path, const cJSON *body, cJSON **ret_reply, char **ret_cursor);

int client_call(Ctl *ctl, const char *method, const char *path, const cJSON *body, cJSON **ret_reply) {
        return call(ctl, method, path, body, ret_reply, NULL);
}

int client_list(Ctl *ctl, const char *path, size_t want, cJSON **ret_array) {
        _cleanup_free_ char *cursor = NULL;
        cJSON *all = cJSON_CreateArray();
        size_t got = 0;

        if (!all) {
                fprintf(stderr, "corralctl: out of memory\n");
                return EXIT_API_ERROR;
        }
        /* Page after page, as the Next-Cursor of each says, until want items or the end. */
        do {
                _cleanup_free_ char *page = NULL, *after = cursor ? client_escape(cursor) : NULL;
                size_t limit = want == 0 ? CLIENT_PAGE_MAX : MIN(want - got, (size_t) CLIENT_PAGE_MAX);
                cJSON *reply = NULL, *item;
                int r;

                if ((cursor && !after) ||
                    asprintf(&page, "%s%slimit=%zu%s%s", path, strchr(path, '?') ? "&" : "?", limit, after ? "&after=" : "",
                             strempty(after)) < 0) {
                        cJSON_Delete(all);
                        fprintf(stderr, "corralctl: out of memory\n");
                        return EXIT_API_ERROR;
                }
                cursor = mfree(cursor);
                r = call(ctl, "GET", page, NULL, &reply, &cursor);
                if (r != EXIT_OK) {
                        cJSON_Delete(all);
                        return r;
                }
                if (!cJSON_IsArray(reply)) {
                        cJSON_Delete(reply);
                        cJSON_Delete(all);
                        fprintf(stderr, "corralctl: corrald sent a list that is not an array\n");
                        return EXIT_API_ERROR;
                }
                while ((item = cJSON_DetachItemFromArray(reply, 0))) {
                        cJSON_AddItemToArray(all, item);
                        got++;
                }
                cJSON_Delete(reply);
        } while (cursor && (want == 0 || got < want));
        *ret_array = all;
        return EXIT_OK;
}

static int call(Ctl *ctl, const char *method, const char *path, const cJSON *body, cJSON **ret_reply, char **ret_cursor) {
        _cleanup_free_ char *url = NULL, *text = NULL;
        struct curl_slist *headers = NULL;
        Buffer reply = {};
        char errbuf[CURL_ERROR_SIZE] = "";
        CURLcode rc;
        CURL *curl;
        int ret;

        url = malloc(strlen(path) + sizeof("http://localhost"));
        text = body ? cJSON_PrintUnformatted(body) : NULL;
        if (!url || (body && !text)) {
                fprintf(stderr, "corralctl: out of memory\n");
                return EXIT_API_ERROR;
        }
        strcpy(url, "http://localhost");
        strcat(url, path);

        curl = curl_easy_init();
        if (!curl) {
                fprintf(stderr, "corralctl: failed to initialize libcurl\n");
                return EXIT_UNREACHABLE;
        }
        curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, ctl->socket_path);
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
        if (ret_cursor) {
                curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
                curl_easy_setopt(curl, CURLOPT_HEADERDATA, ret_cursor);
        }
        if (text) {
                headers = curl_slist_append(headers, "Content-Type: application/json");
                curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
                curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
        }

        rc = curl_easy_perform(curl);
        if (rc == CURLE_OK)
                record_answer(curl, method, path, &reply);
        ret = interpret(ctl, curl, rc, errbuf, &reply, ret_reply);

        free(reply.data);
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        return ret;
}

/* Server-sent events as they come: frames end with an empty line; "event:" and "data:"
 * lines are kept, comments (":") and "retry:" skipped. A refusal (not 200) is read whole. */
typedef struct EventReader {
        Buffer b;
        size_t scanned;
        long status;
        CURL *curl;
        ClientEventFn fn;
        ClientTickFn tick;
        void *userdata;
        int stop;
} EventReader;

static void event_frame(EventReader *er, char *frame) {
        const char *type = "message";
        char *data = NULL;

        for (char *line = frame, *next; line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (strncmp(line, "event: ", 7) == 0)
                        type = line + 7;
                else if (strncmp(line, "data: ", 6) == 0)
                        data = line + 6;
        }
        if (!data || er->stop < 0)
                return;
        cJSON *j = cJSON_Parse(data);
        if (j)
                er->stop = er->fn(type, j, er->userdata);
        cJSON_Delete(j);
}

static size_t on_event_data(char *ptr, size_t size, size_t nmemb, void *userdata) {
        EventReader *er = userdata;
        size_t n = on_data(ptr, size, nmemb, &er->b);
        char *end;

        if (n == 0 && size * nmemb > 0)
                return 0;
        if (er->status == 0)
                curl_easy_getinfo(er->curl, CURLINFO_RESPONSE_CODE, &er->status);
        if (er->status != 200)
                return n; /* an error's JSON, read whole */
        /* Every complete frame, then what is left moved to the front. */
        while ((end = strstr(er->b.data + er->scanned, "\n\n"))) {
                *end = 0;
                event_frame(er, er->b.data + er->scanned);
                er->scanned = (size_t) (end + 2 - er->b.data);
        }
        memmove(er->b.data, er->b.data + er->scanned, er->b.size - er->scanned + 1);
        er->b.size -= er->scanned;
        er->scanned = 0;
        return er->stop < 0 ? 0 : n;
}

static int on_event_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        EventReader *er = userdata;

        if (er->stop >= 0)
                er->stop = er->tick(er->userdata);
        return er->stop < 0; /* non-zero: the transfer ends */
}

int client_events(Ctl *ctl, const char *path, ClientEventFn fn, ClientTickFn tick, void *userdata) {
        _cleanup_free_ char *url = strprintf("http://localhost%s", path);
        EventReader er = { .fn = fn, .tick = tick, .userdata = userdata };
        char errbuf[CURL_ERROR_SIZE] = "";
        cJSON *reply = NULL;
        CURLcode rc;
        int ret;

        er.curl = curl_easy_init();
        if (!url || !er.curl) {
                fprintf(stderr, "corralctl: out of memory\n");
                return EXIT_API_ERROR;
        }
        curl_easy_setopt(er.curl, CURLOPT_UNIX_SOCKET_PATH, ctl->socket_path);
        curl_easy_setopt(er.curl, CURLOPT_URL, url);
        curl_easy_setopt(er.curl, CURLOPT_WRITEFUNCTION, on_event_data);
        curl_easy_setopt(er.curl, CURLOPT_WRITEDATA, &er);
        curl_easy_setopt(er.curl, CURLOPT_ERRORBUFFER, errbuf);
        curl_easy_setopt(er.curl, CURLOPT_NOSIGNAL, 1L);
        if (tick) {
                curl_easy_setopt(er.curl, CURLOPT_XFERINFOFUNCTION, on_event_progress);
                curl_easy_setopt(er.curl, CURLOPT_XFERINFODATA, &er);
                curl_easy_setopt(er.curl, CURLOPT_NOPROGRESS, 0L);
        }
        rc = curl_easy_perform(er.curl);
        /* Ended by fn or tick (maybe before the answer's first byte), or by corrald. */
        if ((er.stop < 0 && (er.status == 0 || er.status == 200)) || (er.status == 200 && rc == CURLE_OK))
                ret = EXIT_OK;
        else {
                /* A refusal's JSON, or a transfer that failed: said as any request's. */
                Buffer rest = er.b;
                ret = interpret(ctl, er.curl, rc == CURLE_WRITE_ERROR ? CURLE_OK : rc, errbuf, &rest, &reply);
                cJSON_Delete(reply);
                if (ret == EXIT_OK)
                        ret = EXIT_API_ERROR;
        }
        free(er.b.data);
        curl_easy_cleanup(er.curl);
        return ret;
}
