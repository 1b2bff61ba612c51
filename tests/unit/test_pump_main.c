/* SPDX-License-Identifier: MIT */
/*
 * Pump tests.  CTest runs this program once per backend (BERTH_PUMP=uring
 * and BERTH_PUMP=pool); each test checks that the backend it got is the one
 * the environment asked for.  One group per feature, one file per group.
 */
#include "test_pump_util.h"

int main(void)
{
	int fails = 0;

	fails += _cmocka_run_group_tests("pump_io", pump_io_tests,
					 pump_io_count, NULL, NULL);
	fails += _cmocka_run_group_tests("pump_ops", pump_ops_tests,
					 pump_ops_count, NULL, NULL);
	fails += _cmocka_run_group_tests("pump_cancel", pump_cancel_tests,
					 pump_cancel_count, NULL, NULL);
	fails += _cmocka_run_group_tests("pump_shutdown", pump_shutdown_tests,
					 pump_shutdown_count, NULL, NULL);
	fails += _cmocka_run_group_tests("pump_fault", pump_fault_tests,
					 pump_fault_count, NULL, NULL);
	fails += _cmocka_run_group_tests("pump_deep", pump_deep_tests,
					 pump_deep_count, NULL, NULL);
	return fails ? 1 : 0;
}
