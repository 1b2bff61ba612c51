/* SPDX-License-Identifier: MIT */
/*
 * Disk-commit stage tests.  Runs on the backend chosen by BERTH_PUMP
 * (registered once per backend).  One group per feature, one file per group.
 * Windows: the tree and xattr groups (symlinks, hard links, nodes, owners,
 * xattrs: none there) give way to the Windows group (test_commit_win.c).
 */
#include "test_commit_util.h"

int main(void)
{
	int fails = 0;

	fails += _cmocka_run_group_tests("commit_paths", commit_paths_tests,
					 commit_paths_count, NULL, NULL);
	fails += _cmocka_run_group_tests("commit_durability",
					 commit_durability_tests,
					 commit_durability_count, NULL, NULL);
	fails += _cmocka_run_group_tests("commit_fault", commit_fault_tests,
					 commit_fault_count, NULL, NULL);
#ifndef _WIN32
	fails += _cmocka_run_group_tests("commit_tree", commit_tree_tests,
					 commit_tree_count, NULL, NULL);
#endif
	fails += _cmocka_run_group_tests("commit_finish", commit_finish_tests,
					 commit_finish_count, NULL, NULL);
#ifdef _WIN32
	fails += _cmocka_run_group_tests("commit_win", commit_win_tests,
					 commit_win_count, NULL, NULL);
#else
	fails += _cmocka_run_group_tests("commit_xattr", commit_xattr_tests,
					 commit_xattr_count, NULL, NULL);
#endif
	fails += _cmocka_run_group_tests("commit_cancel", commit_cancel_tests,
					 commit_cancel_count, NULL, NULL);
	return fails ? 1 : 0;
}
