/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The coding-CLI adapters: the command lines they build, their prompt, their
 * configuration checks, and the JSON-lines parsers against fixture files of
 * realistic claude and codex output (malformed lines skipped, never a crash).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control/adapter.h"
#include "basic/macro.h"
#include "basic/util.h"
#include "control/budget.h"
#include "control/cli-output.h"
#include "shim/shim.h"
#include "test-helpers.h"
#include "basic/fd-util.h"

static char *fixture_path(const char *name) {
        const char *srcdir = getenv("CORRAL_SRCDIR");
        return strprintf("%s/tests/fixtures/%s", srcdir ?: ".", name);
}

/* Feed a fixture line by line, as a CLI printed it. */
static void parse_fixture(const char *name, AdapterType type, CliOutput *o) {
        _cleanup_free_ char *path = fixture_path(name), *text = NULL;
        size_t size;

        assert_int_equal(read_full_file(path, 1 << 20, &text, &size), 0);
        for (char *p = text, *nl; p < text + size; p = nl + 1) {
                nl = memchr(p, '\n', (size_t) (text + size - p));
                if (!nl)
                        nl = text + size;
                int r = cli_output_feed_line(o, type, p, (size_t) (nl - p));
                assert_true(r == 0 || r == -EBADMSG);
        }
}

static void test_claude_success(void **state) {
        _cleanup_(cli_output_done) CliOutput o = {};

        parse_fixture("claude-success.jsonl", ADAPTER_CLAUDE_LOCAL, &o);
        assert_string_equal(o.session_id, "5b0f7d1e-2c3a-4f1e-9d3b-7a1c2e4f6a80");
        assert_string_equal(o.model, "claude-sonnet-4-5-20250929");
        assert_string_equal(o.result_text, "Fixed the off-by-one in store_list and the suite passes.");
        assert_true(o.saw_result);
        assert_false(o.is_error);
        assert_null(o.error_code);
        assert_null(o.error_message);
        /* The result line's totals: input + cache writes, cache reads, output. */
        assert_int_equal(o.input_tokens, 14 + 5430);
        assert_int_equal(o.cached_input_tokens, 38180);
        assert_int_equal(o.output_tokens, 173);
        assert_true(o.has_cost);
        assert_true(o.cost_usd > 0.0431 && o.cost_usd < 0.0432);
        assert_int_equal(o.num_turns, 4);
        assert_int_equal(o.lines, 6);
        assert_int_equal(o.malformed, 0);

        _cleanup_free_ char *usage = cli_output_usage_json(&o);
        assert_non_null(strstr(usage, "\"inputTokens\":5444"));
        assert_non_null(strstr(usage, "\"provider\":\"anthropic\""));
        assert_non_null(strstr(usage, "\"model\":\"claude-sonnet-4-5-20250929\""));
}

/* While claude streams, each assistant message counts once, its last line's usage: a budget
 * reads it before the result line gives the totals, which then replace it. */
static void test_claude_streamed_usage(void **state) {
        _cleanup_(cli_output_done) CliOutput o = { .type = ADAPTER_CLAUDE_LOCAL };
        static const char *const lines[] = {
                "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"usage\":{\"input_tokens\":100,"
                "\"cache_creation_input_tokens\":10,\"cache_read_input_tokens\":50,\"output_tokens\":1}}}",
                "{\"type\":\"assistant\",\"message\":{\"id\":\"m1\",\"usage\":{\"input_tokens\":100,"
                "\"cache_creation_input_tokens\":10,\"cache_read_input_tokens\":50,\"output_tokens\":20}}}",
                "{\"type\":\"assistant\",\"message\":{\"id\":\"m2\",\"usage\":{\"input_tokens\":200,\"output_tokens\":5}}}",
        };

        for (size_t i = 0; i < ELEMENTSOF(lines); i++)
                assert_int_equal(cli_output_feed_line(&o, ADAPTER_CLAUDE_LOCAL, lines[i], strlen(lines[i])), 0);
        assert_int_equal(o.input_tokens, 110 + 200);
        assert_int_equal(o.cached_input_tokens, 50);
        assert_int_equal(o.output_tokens, 20 + 5);

        const char *result = "{\"type\":\"result\",\"subtype\":\"success\",\"usage\":{\"input_tokens\":7,\"output_tokens\":8}}";
        assert_int_equal(cli_output_feed_line(&o, ADAPTER_CLAUDE_LOCAL, result, strlen(result)), 0);
        assert_int_equal(o.input_tokens, 7);
        assert_int_equal(o.output_tokens, 8);
}

/* A run's price: the CLI's cost, else its tokens at its model's price (cached ones apart
 * where its CLI counts them in the input), a subscription nothing. */
static void test_pricing(void **state) {
        _cleanup_free_ char *error = NULL;
        AdapterBudget api = {}, subscription = { .subscription = true };
        Config c;

        assert_int_equal(config_init(&c), 0);
        assert_int_equal(config_set(&c, "price", "m 10 1 40", &error), 0);

        CliOutput o = { .type = ADAPTER_CLAUDE_LOCAL,
                        .model = (char *) "m",
                        .input_tokens = 1000000,
                        .cached_input_tokens = 1000000,
                        .output_tokens = 100000 };
        budget_price(&c, &api, &o);
        assert_int_equal(o.cost_cents, 1000 + 100 + 400); /* claude's input excludes the cached */
        assert_string_equal(o.price_source, "price");
        o.type = ADAPTER_CODEX_LOCAL; /* codex's includes them */
        budget_price(&c, &api, &o);
        assert_int_equal(o.cost_cents, 0 + 100 + 400);
        o.model = (char *) "unknown";
        budget_price(&c, &api, &o);
        assert_string_equal(o.price_source, "default"); /* 15 1.5 75 */
        assert_int_equal(o.cost_cents, 0 + 150 + 750);
        o.has_cost = true;
        o.cost_usd = 0.125;
        budget_price(&c, &api, &o);
        assert_string_equal(o.price_source, "cli");
        assert_int_equal(o.cost_cents, 13);
        budget_price(&c, &subscription, &o);
        assert_string_equal(o.price_source, "subscription");
        assert_string_equal(o.billing_type, "subscription_included");
        assert_int_equal(o.cost_cents, 0);
        config_done(&c);
}

static void test_claude_max_turns(void **state) {
        _cleanup_(cli_output_done) CliOutput o = {};

        parse_fixture("claude-max-turns.jsonl", ADAPTER_CLAUDE_LOCAL, &o);
        assert_true(o.is_error);
        assert_string_equal(o.error_code, "max_turns_exhausted");
        assert_non_null(strstr(o.error_message, "maximum number of turns (3)"));
        assert_string_equal(o.session_id, "9c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e");
        assert_string_equal(o.model, "claude-opus-4-1-20250805");
        /* No result text in the final line: the last assistant message stands. */
        assert_string_equal(o.result_text, "Let me read the scheduler.");
}

static void test_claude_malformed(void **state) {
        _cleanup_(cli_output_done) CliOutput o = {};

        parse_fixture("claude-malformed.jsonl", ADAPTER_CLAUDE_LOCAL, &o);
        assert_int_equal(o.malformed, 4); /* banner, cut line, shell noise, an array; not the blank line */
        assert_string_equal(o.first_malformed, "Warning: no stdin data received in 3s, proceeding without it.");
        assert_int_equal(o.lines, 3);
        assert_false(o.is_error);
        assert_string_equal(o.result_text, "Done despite the noise.");
        assert_string_equal(o.session_id, "11111111-2222-4333-8444-555555555555");
}

static void test_codex_success(void **state) {
        _cleanup_(cli_output_done) CliOutput o = {};

        parse_fixture("codex-success.jsonl", ADAPTER_CODEX_LOCAL, &o);
        assert_string_equal(o.session_id, "0199a213-81c0-7800-8aa1-bbab2a035a53");
        assert_string_equal(o.result_text, "The build is fixed: a missing semicolon in store.c.");
        assert_false(o.is_error);
        assert_int_equal(o.input_tokens, 24763);
        assert_int_equal(o.cached_input_tokens, 24448);
        assert_int_equal(o.output_tokens, 122);
        assert_false(o.has_cost);
        assert_int_equal(o.num_turns, 1);
        assert_int_equal(o.malformed, 0);
        _cleanup_free_ char *usage = cli_output_usage_json(&o);
        assert_non_null(strstr(usage, "\"provider\":\"openai\""));
        assert_null(strstr(usage, "costUsd"));
}

static void test_codex_failed(void **state) {
        _cleanup_(cli_output_done) CliOutput o = {};

        parse_fixture("codex-failed.jsonl", ADAPTER_CODEX_LOCAL, &o);
        assert_true(o.is_error);
        assert_null(o.error_code);
        assert_string_equal(o.error_message, "exceeded retry limit, last status: 429 Too Many Requests");
        assert_string_equal(o.session_id, "0199b7c4-1a2b-7c3d-9e4f-5a6b7c8d9e0f");
}

/* A transcript of the real CLI (@google/gemini-cli 0.61.0, tests/cli/versions): a shell
 * tool call, then the answer in deltas; the stats are the invocation's. */
static void test_gemini_success(void **state) {
        _cleanup_(cli_output_done) CliOutput o = {};

        parse_fixture("gemini-success.jsonl", ADAPTER_GEMINI_LOCAL, &o);
        assert_string_equal(o.session_id, "3b8bc92c-f77a-44e2-886e-fcc41b03079e");
        assert_string_equal(o.model, "gemini-2.5-pro");
        assert_string_equal(o.result_text, "all done");
        assert_false(o.is_error);
        assert_true(o.saw_result);
        assert_int_equal(o.input_tokens, 320);
        assert_int_equal(o.cached_input_tokens, 40);
        assert_int_equal(o.output_tokens, 40);
        assert_int_equal(o.reasoning_output_tokens, 5);
        assert_false(o.cumulative);
        assert_int_equal(o.malformed, 0);
        _cleanup_free_ char *usage = cli_output_usage_json(&o);
        assert_non_null(strstr(usage, "\"provider\":\"google\""));

        /* Deltas of one message add up; the error of a failed result is its message. */
        _cleanup_(cli_output_done) CliOutput e = {};
        static const char *const lines[] = {
                "{\"type\":\"message\",\"role\":\"assistant\",\"content\":\"half \",\"delta\":true}",
                "{\"type\":\"message\",\"role\":\"assistant\",\"content\":\"and half\",\"delta\":true}",
                "{\"type\":\"result\",\"status\":\"error\",\"error\":{\"type\":\"unknown\",\"message\":\"[API Error: 400]\"},"
                "\"stats\":{\"total_tokens\":0,\"input_tokens\":0,\"output_tokens\":0,\"cached\":0}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(lines); i++)
                assert_int_equal(cli_output_feed_line(&e, ADAPTER_GEMINI_LOCAL, lines[i], strlen(lines[i])), 0);
        assert_string_equal(e.result_text, "half and half");
        assert_true(e.is_error);
        assert_string_equal(e.error_message, "gemini: [API Error: 400]");

        /* A session it cannot resume, said on stderr only. */
        _cleanup_(cli_output_done) CliOutput st = {};
        static const char stale[] = "Error resuming session: Invalid session identifier \"0000\".";
        assert_int_equal(cli_output_feed_stderr_line(&st, ADAPTER_GEMINI_LOCAL, stale, strlen(stale)), 0);
        assert_true(st.stale_session);
        assert_string_equal(st.error_code, "session_not_found");

        /* The last stderr line becomes the run's error: never with a credential in it. */
        static const char leak[] = "fatal: request failed, OPENAI_API_KEY=sk-live-0123456789abcdef rejected";
        assert_int_equal(cli_output_feed_stderr_line(&st, ADAPTER_GEMINI_LOCAL, leak, strlen(leak)), 0);
        assert_null(strstr(st.stderr_last, "sk-live"));
        assert_non_null(strstr(st.stderr_last, "***REDACTED***"));
}

/* A transcript of the real CLI (@mariozechner/pi-coding-agent 0.73.1, tests/cli/versions): a
 * bash tool call, then the answer; each assistant message carries its own usage and cost. */
static void test_pi_success(void **state) {
        _cleanup_(cli_output_done) CliOutput o = {};

        parse_fixture("pi-success.jsonl", ADAPTER_PI_LOCAL, &o);
        assert_string_equal(o.session_id, "01a234a3-3411-76a7-8bd1-2c2aa6b08e60");
        assert_string_equal(o.model, "stub-model");
        assert_string_equal(o.result_text, "all done");
        assert_false(o.is_error);
        assert_true(o.saw_result);
        assert_int_equal(o.input_tokens, 280);
        assert_int_equal(o.cached_input_tokens, 40);
        assert_int_equal(o.output_tokens, 40);
        assert_true(o.has_cost);
        assert_true(fabs(o.cost_usd - 0.001452) < 1e-9);
        assert_int_equal(o.num_turns, 2);
        assert_int_equal(o.malformed, 0);
        _cleanup_free_ char *usage = cli_output_usage_json(&o);
        assert_non_null(strstr(usage, "\"provider\":\"stub\""));

        /* An API error ends the last message: the run failed, in pi's words. */
        _cleanup_(cli_output_done) CliOutput e = {};
        static const char line[] = "{\"type\":\"message_end\",\"message\":{\"role\":\"assistant\",\"content\":[],"
                                   "\"stopReason\":\"error\",\"errorMessage\":\"400 bad request\"}}";
        assert_int_equal(cli_output_feed_line(&e, ADAPTER_PI_LOCAL, line, strlen(line)), 0);
        assert_true(e.is_error);
        assert_string_equal(e.error_message, "pi: 400 bad request");
}

/* A transcript of the real CLI (opencode-ai 1.18.33, tests/cli/versions): a bash tool call,
 * then the answer; each step's finish carries its own tokens and cost. */
static void test_opencode_success(void **state) {
        _cleanup_(cli_output_done) CliOutput o = {};

        parse_fixture("opencode-success.jsonl", ADAPTER_OPENCODE_LOCAL, &o);
        assert_string_equal(o.session_id, "ses_dc8c1ef75ffeUFg3UzAT7rsVqJ");
        assert_null(o.model); /* it prints none: the configured one is the run's */
        assert_string_equal(o.result_text, "all done");
        assert_false(o.is_error);
        assert_true(o.saw_result);
        assert_int_equal(o.input_tokens, 320);
        assert_int_equal(o.cached_input_tokens, 40);
        assert_int_equal(o.output_tokens, 40);
        assert_true(o.has_cost);
        assert_true(fabs(o.cost_usd - 0.001572) < 1e-9);
        assert_int_equal(o.num_turns, 2);
        assert_int_equal(o.malformed, 0);

        /* An API error: the run failed, in the API's words. */
        _cleanup_(cli_output_done) CliOutput e = {};
        static const char line[] = "{\"type\":\"error\",\"sessionID\":\"ses_x\",\"error\":{\"name\":\"APIError\","
                                   "\"data\":{\"message\":\"400 bad request\",\"statusCode\":400}}}";
        assert_int_equal(cli_output_feed_line(&e, ADAPTER_OPENCODE_LOCAL, line, strlen(line)), 0);
        assert_true(e.is_error);
        assert_string_equal(e.error_message, "opencode: 400 bad request");
        assert_string_equal(e.session_id, "ses_x");
}

/* The shim's note that it starts a CLI again afresh (shim.h, again) resets what the first
 * start said: a stale session's refusal is not the run's end. */
static void test_again_note(void **state) {
        _cleanup_(cli_output_done) CliOutput o = {};
        static const char refused[] = "Error: No session found matching 'x'";
        static const char answer[] = "{\"type\":\"step_finish\",\"sessionID\":\"ses_new\",\"part\":{\"reason\":\"stop\","
                                     "\"tokens\":{\"input\":10,\"output\":5,\"cache\":{\"read\":0,\"write\":0}},\"cost\":0.01}}";

        assert_string_equal(SHIM_AGAIN_NOTE, CLI_AGAIN_NOTE);
        assert_int_equal(cli_output_feed_stderr_line(&o, ADAPTER_PI_LOCAL, refused, strlen(refused)), 0);
        assert_true(o.stale_session);
        assert_string_equal(o.error_code, "session_not_found");
        assert_int_equal(cli_output_feed_stderr_line(&o, ADAPTER_PI_LOCAL, SHIM_AGAIN_NOTE, strlen(SHIM_AGAIN_NOTE)), 0);
        assert_false(o.stale_session);
        assert_null(o.error_code);
        assert_null(o.error_message);
        assert_null(o.stderr_last);

        _cleanup_(cli_output_done) CliOutput c = {};
        assert_int_equal(cli_output_feed_stderr_line(&c, ADAPTER_OPENCODE_LOCAL, SHIM_AGAIN_NOTE, strlen(SHIM_AGAIN_NOTE)), 0);
        assert_int_equal(cli_output_feed_line(&c, ADAPTER_OPENCODE_LOCAL, answer, strlen(answer)), 0);
        assert_string_equal(c.session_id, "ses_new");
        assert_int_equal(c.output_tokens, 5);
}

static void test_garbage_never_crashes(void **state) {
        static const char *const lines[] = {
                "",
                "{",
                "}",
                "null",
                "42",
                "\"str\"",
                "{\"type\":null}",
                "{\"type\":\"result\"}",
                "{\"type\":\"result\",\"usage\":[1,2],\"total_cost_usd\":\"x\",\"num_turns\":-5}",
                "{\"type\":\"assistant\",\"message\":{\"content\":\"not an array\"}}",
                "{\"type\":\"item.completed\",\"item\":7}",
                "{\"type\":\"turn.failed\",\"error\":1}",
                "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":-3}}",
                "{\"type\":\"step_finish\",\"part\":{\"tokens\":{\"input\":-3,\"cache\":7},\"cost\":\"x\"}}",
                "{\"type\":\"step_finish\",\"part\":[]}",
                "{\"type\":\"error\",\"error\":\"not an object\"}",
                "{\"type\":\"text\",\"sessionID\":5,\"part\":{\"text\":[]}}",
                "\xff\xfe\x00"
        };
        for (AdapterType t = ADAPTER_CLAUDE_LOCAL; t < _ADAPTER_TYPE_MAX; t++) {
                _cleanup_(cli_output_done) CliOutput o = {};
                for (size_t i = 0; i < ELEMENTSOF(lines); i++)
                        (void) cli_output_feed_line(&o, t, lines[i], strlen(lines[i]));
                assert_true(o.input_tokens >= 0 && o.output_tokens >= 0 && o.num_turns >= 0);
        }
}

/* Numbers out of any range (a CLI under a hostile model's control) count as not reported:
 * a cost of 1e308 once made the run's end impossible to record. */
static void test_out_of_range_numbers(void **state) {
        static const char line[] = "{\"type\":\"result\",\"subtype\":\"success\",\"total_cost_usd\":1e308,"
                                   "\"num_turns\":1e300,\"usage\":{\"input_tokens\":1e300,\"output_tokens\":9.3e18}}";
        _cleanup_(cli_output_done) CliOutput o = {};

        assert_int_equal(cli_output_feed_line(&o, ADAPTER_CLAUDE_LOCAL, line, strlen(line)), 0);
        assert_false(o.has_cost);
        assert_int_equal(o.input_tokens, 0);
        assert_int_equal(o.output_tokens, 0);
        assert_int_equal(o.num_turns, 0);
        /* Each is counted as invalid, and the first named for the run's event. */
        assert_int_equal(o.invalid_numbers, 4);
        assert_string_equal(o.first_invalid, "input_tokens=1e+300");
}

/* Codex's counts are the thread's running totals: the last one counts, and a session's
 * earlier totals are taken away (never below what was reported, never wrapped). */
static void test_counts_saturate(void **state) {
        static const char line[] = "{\"type\":\"turn.completed\",\"usage\":{\"input_tokens\":9007199254740991}}";
        _cleanup_(cli_output_done) CliOutput o = {};

        for (int i = 0; i < 1100; i++)
                assert_int_equal(cli_output_feed_line(&o, ADAPTER_CODEX_LOCAL, line, strlen(line)), 0);
        assert_int_equal(o.input_tokens, 9007199254740991);
        assert_true(o.cumulative);
        cli_output_session_delta(&o, 9007199254740000, 0, 0);
        assert_int_equal(o.input_tokens, 991);
        assert_int_equal(o.total_input_tokens, 9007199254740991);
        assert_int_equal(o.invalid_numbers, 0);
        assert_int_equal(cli_count_add(INT64_MAX - 1, 5), INT64_MAX);
        assert_int_equal(cli_count_add(3, 4), 7);
}

/* The log path: chunks in log.ndjson split lines anywhere; stderr is not parsed. */
static void test_parse_log(void **state) {
        _cleanup_free_ char *path = fixture_path("claude-success.jsonl"), *text = NULL;
        char dir[] = "/tmp/corral-test-adapters-XXXXXX";
        size_t size;
        FILE *f;

        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *log = strprintf("%s/log.ndjson", dir);
        assert_int_equal(read_full_file(path, 1 << 20, &text, &size), 0);
        f = fopen(log, "we");
        assert_non_null(f);
        for (size_t off = 0; off < size;) {
                size_t n = MIN(size - off, (size_t) 97);
                char line[4096];
                size_t k = shim_format_line(line, "2026-01-01T00:00:00.000Z", "stdout", text + off, n);
                fwrite(line, 1, k, f);
                k = shim_format_line(line, "2026-01-01T00:00:00.000Z", "stderr", "{\"type\":\"result\",\"result\":\"x\"}\n", 31);
                fwrite(line, 1, k, f);
                off += n;
        }
        fclose(f);

        _cleanup_(cli_output_done) CliOutput o = {};
        assert_int_equal(cli_output_parse_log(log, ADAPTER_CLAUDE_LOCAL, &o), 0);
        assert_string_equal(o.result_text, "Fixed the off-by-one in store_list and the suite passes.");
        assert_int_equal(o.lines, 6);
        assert_int_equal(o.malformed, 0);

        _cleanup_(cli_output_done) CliOutput missing = {};
        assert_int_equal(cli_output_parse_log("/nonexistent/log.ndjson", ADAPTER_CLAUDE_LOCAL, &missing), 0);
        assert_int_equal(missing.lines, 0);
        unlink(log);
        rmdir(dir);
}

static bool argv_equal(char **argv, const char *const *expected) {
        size_t i;
        for (i = 0; argv[i] && expected[i]; i++)
                if (!streq(argv[i], expected[i]))
                        return false;
        return !argv[i] && !expected[i];
}

static void build(AdapterType type, const char *config, const char *session, AdapterLaunch *l) {
        Agent agent = { .id = (char *) "agent-1",
                        .company_id = (char *) "co-1",
                        .name = (char *) "Ada",
                        .adapter_type = type,
                        .adapter_config = (char *) config };
        Run run = { .id = (char *) "run-1",
                    .session_id_before = (char *) session,
                    .context_snapshot =
                            (char *) "{\"wakeReason\":\"issue_assigned\",\"issueId\":\"iss-1\","
                                     "\"paperclipWake\":{\"issue\":{\"identifier\":\"ENG-7\",\"title\":\"Fix it\"}}}" };
        _cleanup_free_ char *error = NULL;

        assert_int_equal(
                adapter_build_launch(&agent, &run, "/run/corral/agent.sock", "/var/lib/corral/homes/a1", NULL, l, &error), 0);
}

static void test_claude_command_line(void **state) {
        _cleanup_(adapter_launch_done) AdapterLaunch fresh = {}, resumed = {};

        build(ADAPTER_CLAUDE_LOCAL, "{}", NULL, &fresh);
        assert_true(argv_equal(
                fresh.argv, (const char *const[]){ "claude", "--print", "--output-format", "stream-json", "--verbose", NULL }));
        assert_non_null(strstr(fresh.stdin_text, "You are Ada (agent agent-1)"));
        assert_non_null(strstr(fresh.stdin_text, "Issue: ENG-7 Fix it"));
        assert_non_null(strstr(fresh.stdin_text, "Wake reason: issue_assigned."));
        /* design §3 difference 6: coding CLIs time out, and go idle, by default. */
        assert_int_equal(fresh.spec.timeout_sec, 3600);
        assert_int_equal(fresh.spec.idle_timeout_sec, 900);
        assert_int_equal(fresh.spec.grace_sec, 20);

        build(ADAPTER_CLAUDE_LOCAL,
              "{\"command\":\"/opt/claude\",\"model\":\"claude-opus-4-1\",\"maxTurnsPerRun\":12,"
              "\"dangerouslySkipPermissions\":true,\"extraArgs\":[\"--add-dir\",\"/srv\"],"
              "\"promptTemplate\":\"run {{run.id}} for {{issue.identifier}} {{unknown}} {{\",\"idleTimeoutSec\":0}",
              "sess-9", &resumed);
        assert_true(argv_equal(resumed.argv,
                               (const char *const[]){ "/opt/claude", "--print", "--output-format", "stream-json", "--verbose",
                                                      "--resume", "sess-9", "--model", "claude-opus-4-1", "--max-turns", "12",
                                                      "--dangerously-skip-permissions", "--add-dir", "/srv", NULL }));
        assert_string_equal(resumed.stdin_text, "run run-1 for ENG-7 {{unknown}} {{");
        assert_int_equal(resumed.spec.idle_timeout_sec, 0);
}

static void test_codex_command_line(void **state) {
        _cleanup_(adapter_launch_done) AdapterLaunch fresh = {}, resumed = {};

        build(ADAPTER_CODEX_LOCAL, "{\"model\":\"gpt-5-codex\",\"dangerouslyBypassApprovalsAndSandbox\":true}", NULL, &fresh);
        assert_true(argv_equal(fresh.argv,
                               (const char *const[]){ "codex", "exec", "--json", "--model", "gpt-5-codex",
                                                      "--dangerously-bypass-approvals-and-sandbox", "-", NULL }));
        build(ADAPTER_CODEX_LOCAL, "{\"extraArgs\":[\"--skip-git-repo-check\"]}", "0199a213", &resumed);
        assert_true(argv_equal(
                resumed.argv,
                (const char *const[]){ "codex", "exec", "--json", "--skip-git-repo-check", "resume", "0199a213", "-", NULL }));
        assert_non_null(resumed.stdin_text);
}

static void test_config_errors(void **state) {
        static const struct {
                AdapterType type;
                const char *config, *error;
        } cases[] = {
                { ADAPTER_CLAUDE_LOCAL, "{\"args\":[\"x\"]}",
                  "adapterConfig.args is for the process adapter; claude_local takes extraArgs" },
                { ADAPTER_CLAUDE_LOCAL, "{\"stdin\":\"x\"}", "adapterConfig.stdin is for the process adapter" },
                { ADAPTER_CLAUDE_LOCAL, "{\"model\":\"\"}", "adapterConfig.model must be a non-empty string" },
                { ADAPTER_CLAUDE_LOCAL, "{\"maxTurnsPerRun\":-1}", "adapterConfig.maxTurnsPerRun must be an integer" },
                { ADAPTER_CLAUDE_LOCAL, "{\"dangerouslySkipPermissions\":\"yes\"}",
                  "adapterConfig.dangerouslySkipPermissions must be true or false" },
                { ADAPTER_CODEX_LOCAL, "{\"extraArgs\":[1]}", "adapterConfig.extraArgs must be an array of strings" },
                { ADAPTER_CODEX_LOCAL, "{\"promptTemplate\":7}", "adapterConfig.promptTemplate must be a string" },
                { ADAPTER_CODEX_LOCAL, "[]", "adapterConfig must be a JSON object" },
                { ADAPTER_PROCESS, "{\"command\":\"\"}", "adapterConfig.command must be a non-empty string" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *error = NULL;
                assert_int_equal(adapter_validate_config(cases[i].type, cases[i].config, &error), -EINVAL);
                assert_non_null(error);
                if (strncmp(error, cases[i].error, strlen(cases[i].error)) != 0)
                        fail_msg("config %s: got \"%s\", expected \"%s\"", cases[i].config, error, cases[i].error);
        }
        _cleanup_free_ char *error = NULL;
        assert_int_equal(adapter_validate_config(ADAPTER_CLAUDE_LOCAL, "{}", &error), 0);
        assert_int_equal(adapter_validate_config(ADAPTER_CODEX_LOCAL, "{\"model\":\"o3\",\"extraArgs\":[]}", &error), 0);
}

static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claude_success),
        cmocka_unit_test(test_claude_streamed_usage),
        cmocka_unit_test(test_pricing),
        cmocka_unit_test(test_claude_max_turns),
        cmocka_unit_test(test_claude_malformed),
        cmocka_unit_test(test_codex_success),
        cmocka_unit_test(test_codex_failed),
        cmocka_unit_test(test_gemini_success),
        cmocka_unit_test(test_pi_success),
        cmocka_unit_test(test_opencode_success),
        cmocka_unit_test(test_again_note),
        cmocka_unit_test(test_garbage_never_crashes),
        cmocka_unit_test(test_out_of_range_numbers),
        cmocka_unit_test(test_counts_saturate),
        cmocka_unit_test(test_parse_log),
        cmocka_unit_test(test_claude_command_line),
        cmocka_unit_test(test_codex_command_line),
        cmocka_unit_test(test_config_errors),
};

RUN_TESTS(tests)
