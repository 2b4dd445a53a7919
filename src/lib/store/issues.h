/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Rules of the issue record itself (reference §1.8): timestamps that follow the
 * status, and the checkout/execution lock fields that a status or assignee
 * change releases. Pure functions on records, so they are tested alone.
 */
#pragma once

#include <stdbool.h>

#include "store/model.h"

/* A new issue: timestamps of its initial status. now is an ISO time. */
int issue_apply_create_rules(Issue *issue, const char *now);

/* An update turned before into after; status_given tells whether the request named a status.
 * Adjusts after: status moved to todo on reassignment of an in_progress issue, started/
 * completed/cancelled times, and the lock fields released by the change. */
int issue_apply_update_rules(const Issue *before, Issue *after, bool status_given, const char *now);

/* done or cancelled. */
bool issue_status_is_closed(IssueStatus s);

/* Whether the issue's assignee differs between two versions. */
bool issue_assignee_changed(const Issue *a, const Issue *b);

/* Issue identifiers: "<PREFIX>-<n>". Prefixes are 1-10 upper-case letters or digits, starting
 * with a letter. */
bool issue_prefix_is_valid(const char *prefix);
/* A prefix derived from a company name: its first four letters or digits, upper-cased
 * ("Acme Robotics" -> "ACME"); "CRL" when the name has none. */
int issue_prefix_from_name(const char *name, char **ret);

/* The activity details of reopening a closed issue to todo (reference §8): identifier,
 * status, reopened, reopenedFrom and, when given, source. NULL on allocation failure. */
struct cJSON *issue_reopen_details(const Issue *issue, IssueStatus from, const char *source);
