/* test_e2e.c: the official OpenAI Node SDK (tests/e2e, pinned with a lock
 * file) talks to the real daemon, which forwards to the fake frontier or
 * answers with the local engine (stories260K). One test case per SDK
 * scenario in tests/e2e/sdk.mjs. */
#include "testlib.h"

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#ifndef JUNCTION_SOURCE_DIR
#error "JUNCTION_SOURCE_DIR must name the source tree"
#endif

static test_fake fake;
static test_daemon daemon_;
static char config_path[64];

static int setup(void **state)
{
    (void)state;
    if (fake_start(&fake, NULL) != 0) return -1;
    char cfg[1024];
    snprintf(cfg, sizeof(cfg),
             "{\"upstreams\": [{\"name\":\"frontier\",\"provider\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1\",\"max_retries\":0},"
             "{\"name\":\"claude\",\"provider\":\"anthropic\",\"base_url\":\"http://127.0.0.1:%d/v1\"}]}",
             fake.port, fake.port);
    write_temp_file(config_path, cfg);
    const char *args[] = {"--config", config_path, "--model", JUNCTION_SHARED_DIR "/models/stories260K.gguf",
                          "--threads", "1", NULL};
    return daemon_start(&daemon_, args, NULL);
}

static int teardown(void **state)
{
    (void)state;
    kill(daemon_.pid, SIGTERM);
    int rc = daemon_wait(&daemon_, 10);
    daemon_cleanup(&daemon_);
    fake_stop(&fake);
    unlink(config_path);
    return rc == 0 ? 0 : -1;
}

static void run_scenario(void **state)
{
    const char *scenario = *state;
    char url[96];
    snprintf(url, sizeof(url), "JUNCTION_URL=%s", daemon_.url);
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(JUNCTION_SOURCE_DIR "/tests/e2e") != 0) _exit(126);
        putenv(url);
        execlp("node", "node", "sdk.mjs", scenario, (char *)NULL);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 127) fail_msg("node is not installed (script/bootstrap installs it)");
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    static const char *const scenarios[] = {"chat", "stream", "anthropic_stream", "errors", "models", "local_chat",
                                            "local_stream"};
    enum { N = sizeof(scenarios) / sizeof(scenarios[0]) };
    struct CMUnitTest tests[N];
    for (int i = 0; i < N; i++) {
        tests[i] = (struct CMUnitTest)cmocka_unit_test_prestate(run_scenario, (void *)scenarios[i]);
        tests[i].name = scenarios[i];
    }
    return _cmocka_run_group_tests("e2e", tests, N, setup, teardown);
}
