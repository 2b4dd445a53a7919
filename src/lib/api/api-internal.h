/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What route handlers see of a request: the method, the path parameters, the
 * parsed JSON body and the peer's credentials, with no libmicrohttpd types.
 */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <sys/types.h>

#include "basic/macro.h"

typedef struct Control Control;

#define API_PARAMS_MAX 4

typedef struct ApiRequest {
        Control *ctl;
        const char *method;
        const char *path;
        char *params[API_PARAMS_MAX]; /* the ":name" segments of the route, in order */
        cJSON *body; /* NULL when the request had no body */
        uid_t peer_uid;
        pid_t peer_pid;
        void *connection; /* opaque, for api_query() */

        /* Set when the peer is a process of a run: it acts as that run's agent. */
        char *caller_run_id;
        char *caller_agent_id;
        char *caller_company_id;
        const char *interrupted_run_id; /* a run this request interrupted: its wakes name it */

        unsigned status; /* response, set by api_reply*() */
        cJSON *reply;
        char *reply_text; /* instead of reply: a plain-text body (GET /metrics) */
        const char *reply_content_type;
} ApiRequest;

/* A route handler replies with api_reply*() and returns >= 0, or returns -errno for an
 * internal failure, which becomes a 5xx with the error's text. */
typedef int (*ApiHandler)(ApiRequest *req);

typedef struct ApiRoute {
        const char *method;
        const char *pattern; /* "/api/companies/:id/agents" */
        ApiHandler handler;
} ApiRoute;

extern const ApiRoute api_routes[];

/* A query-string argument, or NULL. */
const char *api_query(ApiRequest *req, const char *key);

/* Set the response; takes ownership of body (which may be NULL on allocation failure: then -ENOMEM). */
int api_reply(ApiRequest *req, unsigned status, cJSON *body);
int api_reply_error(ApiRequest *req, unsigned status, const char *format, ...) _printf_(3, 4);
/* A body that is not JSON; takes ownership of text. */
int api_reply_text(ApiRequest *req, unsigned status, char *text, const char *content_type);
