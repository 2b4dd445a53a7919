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

/* Percent-encode s for a URL path segment or query value; NULL on OOM. */
char *client_escape(const char *s);
