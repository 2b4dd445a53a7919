/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The one place corralctl talks HTTP.
 */
#include "client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"

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
                fprintf(stderr, "corralctl: %s (HTTP %ld)\n", cJSON_IsString(error) ? error->valuestring : "request failed",
                        status);
                cJSON_Delete(json);
                return EXIT_API_ERROR;
        }
        *ret_reply = json;
        return EXIT_OK;
}

int client_call(Ctl *ctl, const char *method, const char *path, const cJSON *body, cJSON **ret_reply) {
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
        if (text) {
                headers = curl_slist_append(headers, "Content-Type: application/json");
                curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
                curl_easy_setopt(curl, CURLOPT_POSTFIELDS, text);
        }

        rc = curl_easy_perform(curl);
        ret = interpret(ctl, curl, rc, errbuf, &reply, ret_reply);

        free(reply.data);
        curl_slist_free_all(headers);
        curl_easy_cleanup(curl);
        return ret;
}
