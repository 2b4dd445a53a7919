/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the coding CLIs say about a run (design §6): the JSON lines that
 * `claude --output-format stream-json` and `codex exec --json` print on stdout,
 * read back from the run's log.ndjson after the run ended, so that a restart of
 * corrald loses nothing. A line that is not a JSON object is counted and skipped,
 * never fatal: a CLI may print a banner or a warning between its JSON lines.
 */
#pragma once

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/model.h"

/* A line longer than this is not parsed (it is counted as malformed). */
#define CLI_OUTPUT_LINE_MAX (4 * 1024 * 1024)
/* The line on stderr where the shim starts a CLI that could not resume its session once more,
 * afresh (SHIM_AGAIN_NOTE of shim/shim.h): what came before it is not the run's result. */
#define CLI_AGAIN_NOTE "corral-shim: the agent could not resume its session: starting it once more, afresh"

/* The most a CLI may report one run to have cost; more is taken as no report. */
#define CLI_COST_USD_MAX 1e6

/* What is kept of the CLI's last line on stderr. */
#define CLI_STDERR_LINE_MAX 512

typedef struct CliOutput {
        AdapterType type;
        char *session_id; /* claude session_id, codex thread_id */
        char *model;
        char *provider; /* when the CLI names it (pi): else the adapter's */
        char *result_text; /* the final result, or the last assistant message */
        char *error_message; /* what the CLI reported as its failure */
        const char *error_code; /* "max_turns_exhausted", "session_not_found", or NULL */
        bool stale_session; /* the CLI could not resume the session it was given */
        char *stderr_last; /* the last line the CLI printed on stderr, for a failure's reason */
        bool saw_result; /* claude, gemini: a "result" line; codex: a completed turn */
        bool continues_text; /* gemini: the last line was a delta of the assistant's message */
        bool is_error; /* the CLI itself reported that the run failed */
        int64_t input_tokens;
        int64_t cached_input_tokens;
        int64_t output_tokens;
        int64_t cache_write_input_tokens; /* reported apart: not in input_tokens */
        int64_t reasoning_output_tokens; /* part of output_tokens */
        /* The counts are the session's running totals (codex), not this run's: finalize
         * takes what the session had before away (cli_output_session_delta()). */
        bool cumulative;
        int64_t total_input_tokens, total_cached_input_tokens, total_output_tokens;
        double cost_usd;
        bool has_cost;
        /* claude: the assistant message being streamed, whose usage the counts above hold
         * (each of its lines repeats it, growing) until the result line replaces them. */
        char *message_id;
        int64_t message_input, message_cached, message_output;
        /* What the run cost, priced by the budget module (control/budget.h) before its end
         * is recorded; priced false leaves it out of usageJson. */
        bool priced;
        int64_t cost_cents;
        const char *price_source; /* "cli", "price", "default", "subscription" */
        const char *billing_type; /* "api", "subscription_included" */
        int64_t num_turns;
        unsigned lines; /* JSON lines understood */
        unsigned malformed; /* lines skipped */
        char *first_malformed; /* the start of the first skipped line, for the warning */
        unsigned invalid_numbers; /* counts or costs out of range, not recorded */
        char *first_invalid; /* "total_cost_usd=1e+308", for the warning */
} CliOutput;

void cli_output_done(CliOutput *o);

/* A count the CLI reported as member name of obj: its value, or 0 when it is absent or out
 * of range (then counted in invalid_numbers, never cast). */
int64_t cli_output_count(CliOutput *o, const cJSON *obj, const char *name);
/* Count v, reported as name, as out of range. */
int cli_output_invalid(CliOutput *o, const char *name, const cJSON *v);
/* a + b for counts, held at INT64_MAX instead of overflowing. */
int64_t cli_count_add(int64_t a, int64_t b);
/* One message's or step's own usage added to the run's (pi's and opencode's way), input as
 * Anthropic counts it: what was not read from the cache, and what was written to it. */
void cli_output_add_step(CliOutput *o, int64_t input, int64_t cached, int64_t written, int64_t output);
/* Its own cost in USD added too; a member that is there and no cost (of range, not a number)
 * counts as invalid, named name. */
int cli_output_add_cost(CliOutput *o, const cJSON *cost, const char *name);

/* The CLI could not resume the session it was given, as it said in line (of its stderr):
 * the run fails as session_not_found, with that line as its reason (prefixed with cli). */
int cli_output_stale_session(CliOutput *o, const char *cli, const char *line);

/* The "text" blocks of a message's "content" array (claude's and pi's shape), joined by
 * newlines; NULL when there is none, or on allocation failure. */
char *cli_text_blocks(const cJSON *message);

/* Replace *p with a copy of s when s is set: a later line wins. */
int cli_output_set(char **p, const char *s);

/* A line the CLI printed on stderr (without its newline): kept as the last one, and given to
 * the adapter (a stale session is said there). */
int cli_output_feed_stderr_line(CliOutput *o, AdapterType type, const char *line, size_t size);

/* For a CLI that reports running totals: this run's usage, given the totals the session had
 * before it (all 0 for a new session). Counts that went down (another session) are kept. */
void cli_output_session_delta(CliOutput *o, int64_t input, int64_t cached, int64_t output);

/* Feed one line of stdout (without its newline). Returns 0, -EBADMSG for a line that is
 * not a JSON object (counted, skipped), or -ENOMEM. */
int cli_output_feed_line(CliOutput *o, AdapterType type, const char *line, size_t size);

/* A CLI's output as chunks of its log arrive, cut into lines: stdout's to
 * cli_output_feed_line(), stderr's to cli_output_feed_stderr_line(). */
typedef struct CliLines {
        CliOutput *out;
        AdapterType type;
        char *buf[2]; /* the current, incomplete line of stdout and of stderr */
        size_t size[2], allocated[2];
        bool overlong[2]; /* the current line is past CLI_OUTPUT_LINE_MAX: drop it */
} CliLines;

int cli_lines_feed(CliLines *s, int stream, const char *data, size_t size);
/* The last lines, without their newlines, once the output ended. */
int cli_lines_finish(CliLines *s);
void cli_lines_done(CliLines *s);

/* Parse the stdout stream of a run's log.ndjson. A missing log counts as empty. */
int cli_output_parse_log(const char *log_path, AdapterType type, CliOutput *o);

/* usageJson of a run (reference §1.6): inputTokens, cachedInputTokens, outputTokens,
 * costUsd, model, provider, numTurns. NULL on allocation failure. */
char *cli_output_usage_json(const CliOutput *o);
