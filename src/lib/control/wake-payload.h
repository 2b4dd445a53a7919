/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The structured wake payload, context.paperclipWake (reference §3.5): what woke
 * the agent, its issue, and the window of comments that woke it, so an agent can
 * act without a round trip to the API. Built when a run starts; adapters hand it to
 * the agent as CORRAL_WAKE_PAYLOAD_JSON and in context.json.
 */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "store/model.h"
#include "store/store.h"

#define WAKE_PAYLOAD_COMMENTS_MAX 8
#define WAKE_PAYLOAD_COMMENT_BODY_MAX 4000
#define WAKE_PAYLOAD_BODIES_MAX 12000

/* Build the payload for a run with context ctx about to start on issue (NULL for none).
 * *ret is NULL when there is nothing to say: no issue, no comments and no stage. */
int wake_payload_build(Store *s, const cJSON *ctx, const Issue *issue, bool checked_out, cJSON **ret);
