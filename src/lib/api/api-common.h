/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What route handlers see of a request (the method, the path parameters, the parsed JSON
 * body, the peer's credentials, with no libmicrohttpd types) and the steps every handler
 * shares: authorize, load, reply. A handler parses, authorizes, makes one call into the
 * control plane or the store and maps its errno to a status (docs/design.md, "API").
 */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <sys/types.h>

#include "basic/macro.h"
#include "control/activity.h"
#include "control/control.h"
#include "control/quota.h"
#include "store/entity.h"
#include "store/model.h"
#include "store/store.h"

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
        /* A handler that returns -EAGAIN is called again API_RETRY_USEC later, until the
         * request is API_ANSWER_TIMEOUT_USEC old (then 503): what it keeps here (malloc'd)
         * is there again at the next try, and freed with the request. */
        char **retry_state;
        uint64_t age_usec; /* since the request came */

        /* Set when the peer is a process of a run: it acts as that run's agent. */
        char *caller_run_id;
        char *caller_agent_id;
        char *caller_company_id;
        const char *interrupted_run_id; /* a run this request interrupted: its wakes name it */

        unsigned status; /* response, set by api_reply*() */
        unsigned retry_after_sec; /* != 0: a Retry-After header goes with it */
        char *next_cursor; /* a list with more pages: the Next-Cursor and Link headers */
        cJSON *reply;
        char *reply_text; /* instead of reply: a plain-text body (GET /metrics) */
        const char *reply_content_type;
        struct ApiStream *reply_stream; /* instead of reply: a body written as it comes (GET /api/events) */
} ApiRequest;

/* A response body written from the loop as it comes (server-sent events), sent by the
 * HTTP thread as the client takes it; what waits is bounded. */
typedef struct ApiStream ApiStream;

/* What waits for a slow client at most: past it a write fails (-ENOBUFS). */
#define API_STREAM_BUFFER_MAX (1024 * 1024)

/* Answer req with a stream of content_type: 200, and what api_stream_write() gives. *ret is
 * the caller's reference (api_stream_unref()). */
int api_reply_stream(ApiRequest *req, const char *content_type, ApiStream **ret);
/* Append to what the client is sent: -ENOBUFS when more than API_STREAM_BUFFER_MAX would wait
 * (force: even so, for a last word), -EPIPE when the client is gone. */
int api_stream_write(ApiStream *s, const char *data, size_t size, bool force);
/* The same, not forced, without waking the HTTP thread: for many writes in a row, each
 * connection woken once by api_stream_flush() after them. */
int api_stream_queue(ApiStream *s, const char *data, size_t size);
void api_stream_flush(ApiStream *s);
/* End the response once what waits is sent. */
void api_stream_close(ApiStream *s);
/* The client went away: nothing written reaches it. */
bool api_stream_gone(ApiStream *s);
ApiStream *api_stream_unref(ApiStream *s);

/* A header of the request, or NULL. */
const char *api_header(ApiRequest *req, const char *name);

/* A route handler replies with api_reply*() and returns >= 0, or returns -errno for an
 * internal failure, which becomes a 5xx with the error's text. */
typedef int (*ApiHandler)(ApiRequest *req);

typedef struct ApiRoute {
        const char *method;
        const char *pattern; /* "/api/companies/:id/agents" */
        ApiHandler handler;
} ApiRoute;

/* The route for method and path, with the ":name" segments in params (api_params_free()
 * them); NULL when none. *ret_path_known tells whether the path has routes for other
 * methods, which allow (allow_size bytes) then lists. */
const ApiRoute *api_route_find(const char *method, const char *path, char *params[static API_PARAMS_MAX], char *allow,
                               size_t allow_size, bool *ret_path_known);
void api_params_free(char *params[static API_PARAMS_MAX]);

/* Each resource's routes, {}-terminated; api.c tries them in this order. */
extern const ApiRoute api_system_routes[];
extern const ApiRoute api_company_routes[];
extern const ApiRoute api_agent_routes[];
extern const ApiRoute api_issue_routes[];
extern const ApiRoute api_comment_routes[];
extern const ApiRoute api_run_routes[];
extern const ApiRoute api_cost_routes[];
extern const ApiRoute api_workspace_routes[];
extern const ApiRoute api_lookup_routes[];
extern const ApiRoute api_event_routes[];
extern const ApiRoute api_host_routes[];
/* All of them, NULL-terminated. */
extern const ApiRoute *const api_route_tables[];

/* docs/openapi.json, built in (its text, NUL-terminated, and its length). */
extern const char api_openapi_json[];
extern const size_t api_openapi_json_size;

/* A query-string argument, or NULL. */
const char *api_query(ApiRequest *req, const char *key);

/* Set the response; takes ownership of body (which may be NULL on allocation failure: then -ENOMEM). */
int api_reply(ApiRequest *req, unsigned status, cJSON *body);
int api_reply_error(ApiRequest *req, unsigned status, const char *format, ...) _printf_(3, 4);
/* A body that is not JSON; takes ownership of text. */
int api_reply_text(ApiRequest *req, unsigned status, char *text, const char *content_type);

/* ?limit= and ?after= of a list: 1, or 0 when replied 400. */
int api_parse_page(ApiRequest *req, StorePage *ret);
/* A page of a list (r: what the store said): the array, and its next cursor in the
 * Next-Cursor and Link headers; a cursor the store refused gets 400. */
int api_reply_page(ApiRequest *req, const Entity *e, int r, void *items, size_t n, StorePage *page);

#define API_LIST_LIMIT_DEFAULT 200
#define API_LIST_LIMIT_MAX 1000

/* The caller as an actor of the activity log. */
Actor api_actor(const ApiRequest *req);
Store *api_store(ApiRequest *req);

int api_reply_entity(ApiRequest *req, unsigned status, const Entity *e, const void *obj);
/* Reply with the records and free them. */
int api_reply_entities(ApiRequest *req, const Entity *e, void *items, size_t n);
/* Reply with the input error from json_to_entity() (consumed), or pass on an internal one. */
int api_reply_input_error(ApiRequest *req, int r, char *error);
/* A refusal of the control plane: its errno as a status with its message (consumed), or an
 * internal error passed on. -EINVAL 400, -EPERM 403, -ENOENT 404, -EBUSY and -EEXIST 409,
 * -EBADR 422 (a reference the request makes is not valid). */
int api_reply_refusal(ApiRequest *req, int r, char *error);

/* These reply themselves and return 0 when the request may not go on, 1 when it may. */
int api_require_body(ApiRequest *req);
/* An agent may act only within its own company. */
int api_check_company(ApiRequest *req, const char *company_id);
/* Operator actions: a run's agent gets 403. */
int api_require_board(ApiRequest *req, const char *what);
/* Count a request of an agent against its quota of kind (the board has none): 1 within it,
 * 0 over it (replied 429 with Retry-After), or -errno. */
int api_within_quota(ApiRequest *req, QuotaKind kind);
/* 1 when a comment body is within quota-comment-kib, else 0 (replied 413). */
int api_check_comment_size(ApiRequest *req, const char *body);
/* A record by id: 404 when it does not exist, 403 when the caller is an agent of another
 * company. */
int api_load(ApiRequest *req, const Entity *e, const char *id, void *ret);
/* An issue by id or by identifier ("ACME-12"). */
int api_load_issue(ApiRequest *req, const char *key, Issue *ret);
/* ?limit= within 1..API_LIST_LIMIT_MAX. */
int api_parse_limit(ApiRequest *req, size_t *ret);
/* ?name= as an integer within min..max, def when absent. */
int api_parse_uint_query(ApiRequest *req, const char *name, int64_t def, int64_t min, int64_t max, int64_t *ret);
/* The reopen and interrupt flags of a comment or an issue update (reference §8). */
int api_parse_comment_flags(ApiRequest *req, bool *ret_reopen, bool *ret_interrupt);

/* The run as it is now, with status. */
int api_reply_run(ApiRequest *req, unsigned status, const char *run_id);
/* api_reply_page() of runs, each running one with what it has spent so far. */
int api_reply_run_page(ApiRequest *req, int r, Run *items, size_t n, StorePage *page);

int api_stamp_updated(char **updated_at);
/* Record an action by the caller in the activity log; details (may be NULL) is consumed. */
int api_add_activity(ApiRequest *req, const char *company_id, const char *action, const char *entity_type, const char *entity_id,
                     const char *agent_id, cJSON *details);

/* More to write in the same transaction as a record (an agent's secrets). */
typedef struct SaveAlso {
        int (*write)(Store *s, const void *obj, const struct SaveAlso *also);
        char **secrets; /* names and values */
        char **secret_names; /* every secret the record has */
} SaveAlso;

/* Write one record, what also says (may be NULL) and its activity row in one transaction:
 * insert when is_new, else update. details (may be NULL) is consumed. */
int api_save_with_activity_also(ApiRequest *req, const Entity *e, void *obj, bool is_new, const SaveAlso *also,
                                const char *company_id, const char *action, const char *entity_id, const char *agent_id,
                                cJSON *details);
int api_save_with_activity(ApiRequest *req, const Entity *e, void *obj, bool is_new, const char *company_id, const char *action,
                           const char *entity_id, const char *agent_id, cJSON *details);
