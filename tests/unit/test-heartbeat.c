/* SPDX-License-Identifier: MIT */
/* The watchdog's rule over the event loops (heartbeat.h): pinged only while every loop moves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "heartbeat.h"

static void test_all_moving_is_alive(void **state)
{
    (void)state;
    uint64_t seen[3] = {0, 0, 0};
    bool finished[3] = {false, false, false};
    uint64_t beats[3] = {1, 4, 2};
    assert_int_equal(heartbeat_stuck(beats, finished, seen, 3), 0);
    assert_int_equal(seen[1], 4);
    beats[0] = 2, beats[1] = 5, beats[2] = 3;
    assert_int_equal(heartbeat_stuck(beats, finished, seen, 3), 0);
}

/* One loop stuck in a callback: its heartbeat does not move, and that alone stops the pings. */
static void test_one_stuck_loop_stops_the_pings(void **state)
{
    (void)state;
    uint64_t seen[4] = {0};
    bool finished[4] = {false};
    uint64_t beats[4] = {1, 1, 1, 1};
    assert_int_equal(heartbeat_stuck(beats, finished, seen, 4), 0);
    beats[0] = 2, beats[1] = 2, beats[3] = 2; /* loop 2 stuck at 1 */
    assert_int_equal(heartbeat_stuck(beats, finished, seen, 4), 1);
    beats[0] = 3, beats[1] = 3, beats[3] = 3;
    assert_int_equal(heartbeat_stuck(beats, finished, seen, 4), 1);
    beats[2] = 2; /* it came back */
    beats[0] = 4, beats[1] = 4, beats[3] = 4;
    assert_int_equal(heartbeat_stuck(beats, finished, seen, 4), 0);
}

/* A loop that drained and left its event loop no longer beats: that is not a hang. */
static void test_finished_loop_is_not_stuck(void **state)
{
    (void)state;
    uint64_t seen[2] = {5, 7};
    bool finished[2] = {false, true};
    uint64_t beats[2] = {6, 7};
    assert_int_equal(heartbeat_stuck(beats, finished, seen, 2), 0);
    finished[1] = false;
    beats[0] = 7;
    assert_int_equal(heartbeat_stuck(beats, finished, seen, 2), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_moving_is_alive),
        cmocka_unit_test(test_one_stuck_loop_stops_the_pings),
        cmocka_unit_test(test_finished_loop_is_not_stuck),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
