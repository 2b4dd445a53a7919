/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * HTTP over corrald's Unix socket with libcurl.
 */
#pragma once

#include <cjson/cJSON.h>

#include "corralctl.h"

/*
 * Send method path with body (may be NULL) and return the decoded JSON reply.
 * Returns EXIT_OK for a 2xx reply (*ret_reply set, may be NULL for an empty body),
 * EXIT_API_ERROR after printing the API's error for 4xx/5xx, EXIT_UNREACHABLE
 * when the daemon cannot be reached.
 */
int client_call(Ctl *ctl, const char *method, const char *path, const cJSON *body, cJSON **ret_reply);

/* The most items corralctl asks for in one page (the API's maximum). */
#define CLIENT_PAGE_MAX 1000
/* How many items a list shows unless --limit says otherwise (the API's default page). */
#define CLIENT_LIST_DEFAULT 200

/* GET a list at path (its filters in the query, no limit), following its pages (their
 * Next-Cursor) until want items (0: all) or its end; *ret_array gets them in order. */
int client_list(Ctl *ctl, const char *path, size_t want, cJSON **ret_array);

/* GET path as server-sent events: each event's data (a JSON object) to fn as it arrives,
 * until the stream ends (or fn returns < 0). tick, when set, is called meanwhile, at
 * least about once a second, also while nothing arrives; < 0 ends the stream too. A
 * refusal is printed like client_call()'s. */
typedef int (*ClientEventFn)(const char *type, const cJSON *data, void *userdata);
typedef int (*ClientTickFn)(void *userdata);
int client_events(Ctl *ctl, const char *path, ClientEventFn fn, ClientTickFn tick, void *userdata);

/* Percent-encode s for a URL path segment or query value; NULL on OOM. */
char *client_escape(const char *s);
