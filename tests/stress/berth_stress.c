/* SPDX-License-Identifier: MIT */
/*
 * berth-stress: the seeded stress loop.
 *
 *   berth-stress [--mode pump,commit,process,session|all] [--seed S]
 *                [--iterations N] [--duration 30s|10m|1h]
 *                [--max-sessions N] [--max-procs N] [--timeout SEC]
 *                [--xfail KIND,...] [--skip MODE:DISRUPTION|FAULT,...]
 *                [--workload W] [--sessions N] [--disruption D]
 *                [--fault KIND[@NTH]]  (pin a choice; --fault: session)
 *                [--berth PATH] [--rsync PATH]
 *                [--workdir DIR] [-v]
 *   berth-stress --relay HOST CMD...     (the remote shell it gives rsync)
 *
 * Each iteration picks its mode, workload, concurrency, backend and
 * disruption from its own seed, runs, then checks the invariants; at the
 * first violation it prints the seed that replays the iteration and exits
 * 1.  A watchdog turns an iteration that overruns --timeout into a failure
 * with every thread's stack (gdb) and the seed.  Exit 0 when all iterations
 * passed, 1 on a violation, 2 on a hang, 64 on bad usage.
 *
 * Windows (under Wine, scripts/test-windows.sh): the pump and commit modes
 * only (no rsync client, no processes to disrupt), and a hang is reported
 * without thread stacks.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#ifndef _WIN32
#include <sys/prctl.h>
#include <sys/wait.h>
#endif
#include <time.h>
#include <unistd.h>

#include "berth.h"
#include "stress.h"

#ifndef BERTH_STRESS_BERTH
#define BERTH_STRESS_BERTH "berth"
#endif

static const char *const mode_names[] = {"pump", "commit", "process",
					 "session"};

static void usage(void)
{
	fprintf(stderr,
		"usage: berth-stress [--mode pump,commit,process,session|all] "
		"[--seed S]\n"
		"         [--iterations N] [--duration 90s|30m|2h] "
		"[--max-sessions N]\n"
		"         [--max-procs N] [--timeout SEC] [--xfail KIND,...]\n"
		"         [--skip MODE:DISRUPTION|FAULT,...] [--workload "
		"small|large|mixed]\n"
		"         [--sessions N] [--disruption NAME] [--fault "
		"KIND[@NTH]]\n"
		"         [--berth PATH] [--rsync PATH] [--workdir DIR] [-v]\n"
		"violation kinds for --xfail: content temp fd mem once count "
		"undisturbed\n"
		"         result signal temp-signal isolation sanitizer temp-killed\n");
	exit(64);
}

static double parse_duration(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || v < 0)
		usage();
	if (!*end || !strcmp(end, "s"))
		return v;
	if (!strcmp(end, "m"))
		return v * 60;
	if (!strcmp(end, "h"))
		return v * 3600;
	usage();
	return 0;
}

static unsigned parse_list(const char *s, const char *const *names, unsigned n,
			   const char *all_name)
{
	char buf[256], *tok, *save;
	unsigned bits = 0, i;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (all_name && !strcmp(tok, all_name)) {
			bits |= (1u << n) - 1;
			continue;
		}
		for (i = 0; i < n; i++)
			if (!strcmp(tok, names[i]))
				break;
		if (i == n) {
			fprintf(stderr, "berth-stress: unknown name '%s'\n",
				tok);
			usage();
		}
		bits |= 1u << i;
	}
	return bits;
}

/* Options a replay needs besides the seed. */
static void add_pin(struct stress_opts *o, const char *opt, const char *v)
{
	size_t n = strlen(o->pins);

	snprintf(o->pins + n, sizeof(o->pins) - n, " %s %s", opt, v);
}

static int parse_workload(const char *v)
{
	if (!strcmp(v, "small"))
		return 0;
	if (!strcmp(v, "large") || !strcmp(v, "large-delta"))
		return 1;
	if (!strcmp(v, "mixed"))
		return 2;
	usage();
	return -1;
}

/* --fault KIND[@NTH] */
static void parse_fault(struct stress_opts *o, const char *v)
{
	char buf[64], *at;
	unsigned bits;

	snprintf(buf, sizeof(buf), "%s", v);
	at = strchr(buf, '@');
	if (at)
		*at++ = 0;
	bits = parse_list(buf, stress_fault_names, SF__COUNT, NULL);
	o->force_fault = ffs((int)bits) - 1;
	o->force_fault_nth = at ? strtoull(at, NULL, 10) : 1;
	if (!o->force_fault_nth)
		usage();
}

/* --skip MODE:DISRUPTION,... or MODE:FAULT,... (MODE may be "all"). */
static void parse_skip(struct stress_opts *o, const char *s)
{
	char buf[512], *tok, *save, *colon;
	unsigned modes, d;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		colon = strchr(tok, ':');
		if (!colon)
			usage();
		*colon = 0;
		modes = parse_list(tok, mode_names, 4, "all");
		for (d = 0; d < SF__COUNT; d++)
			if (!strcmp(colon + 1, stress_fault_names[d]))
				break;
		if (d < SF__COUNT) {
			for (unsigned m = 0; m < 4; m++)
				if (modes & (1u << m))
					o->skip_fault[m] |= 1u << d;
			continue;
		}
		for (d = 1; d < SD__COUNT; d++)
			if (!strcmp(colon + 1, stress_disruption_names[d]))
				break;
		if (d == SD__COUNT) {
			fprintf(stderr,
				"berth-stress: unknown disruption "
				"'%s'\n",
				colon + 1);
			usage();
		}
		for (unsigned m = 0; m < 4; m++)
			if (modes & (1u << m))
				o->skip[m] |= 1u << d;
	}
}

#ifdef _WIN32
static char *self_path(void)
{
	static char buf[4096];
	DWORD n = GetModuleFileNameA(NULL, buf, sizeof(buf));

	return n && n < sizeof(buf) ? buf : NULL;
}

static void dump_stacks(void)
{
	fprintf(stderr, "berth-stress: no stack dump on Windows\n");
}
#else
static char *self_path(void)
{
	static char buf[4096];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);

	if (n < 0)
		return NULL;
	buf[n] = 0;
	return buf;
}

/* The hang report: every thread's stack, from gdb or /proc. */
static void dump_stacks(void)
{
	char pid[32], path[128], line[512];
	pid_t child;
	FILE *f;

	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	fflush(NULL);
	child = fork();
	if (child == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
		dup2(2, 1);
		execlp("gdb", "gdb", "-batch", "-nx", "-p", pid, "-ex",
		       "set pagination off", "-ex", "info threads", "-ex",
		       "thread apply all bt", (char *)NULL);
		_exit(127);
	}
	if (child > 0) {
		int status = 0;

		waitpid(child, &status, 0);
		if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
			return;
	}
	fprintf(stderr, "berth-stress: gdb unavailable; kernel stacks:\n");
	snprintf(path, sizeof(path),
		 "sh -c 'for t in /proc/%d/task/*; do echo \"== $t "
		 "$(cat $t/comm) $(cat $t/wchan)\"; cat $t/stack; done' 2>&1",
		 (int)getpid());
	f = popen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		fputs(line, stderr);
	pclose(f);
}
#endif

/* What the rsync clients of a hung process/session iteration said. */
static void dump_client_logs(const char *workdir)
{
	char path[1024], line[512];
	unsigned i;
	FILE *f;

	for (i = 0; i < 64; i++) {
		snprintf(path, sizeof(path), "%s/proc-%u/client.log", workdir,
			 i);
		f = fopen(path, "re");
		if (!f)
			continue;
		fprintf(stderr, "== %s:\n", path);
		while (fgets(line, sizeof(line), f))
			fputs(line, stderr);
		fclose(f);
	}
}

static void *watchdog(void *arg)
{
	struct stress_state *st = arg;

	for (;;) {
		double dl;

		stress_sleep_us(100000);
		pthread_mutex_lock(&st->lock);
		dl = st->iter_deadline;
		pthread_mutex_unlock(&st->lock);
		if (dl == 0 || stress_now() < dl)
			continue;
		pthread_mutex_lock(&st->lock);
		fprintf(stderr,
			"\nberth-stress: HANG: iteration %" PRIu64
			" did not finish within %.0f s\n"
			"  %s\n"
			"  replay: berth-stress --seed %016" PRIx64
			" --iterations 1 --mode %s%s\n"
			"== stacks of all threads:\n",
			st->iter, st->o.iter_timeout, st->iter_desc,
			st->iter_seed, mode_names[st->iter_mode], st->o.pins);
		/* Keep st->lock to the end: the main thread must not finish
		 * the loop and exit 0 while gdb has us stopped. */
		dump_stacks();
		dump_client_logs(st->o.workdir);
		fprintf(stderr,
			"berth-stress: HANG at seed %016" PRIx64
			" (see above)\n",
			st->iter_seed);
#ifndef _WIN32
		/* The clients of this iteration, with their relays and
		 * berths, each in its own process group. */
		for (unsigned k = 0; k < st->npgids; k++)
			kill(-st->pgids[k], SIGKILL);
#endif
		_exit(2);
	}
	return NULL;
}

static int pick_mode(struct stress_state *st, struct stress_rng *r)
{
	unsigned m[4], n = 0, i;
	uint64_t x = stress_next(r); /* always drawn: replays match */

	for (i = 0; i < 4; i++)
		if (st->o.modes & (1u << i))
			m[n++] = i;
	return (int)m[x % n];
}

static void report(struct stress_state *st, double secs, uint64_t iters)
{
	unsigned i;

	printf("berth-stress: seed %016" PRIx64 ": %" PRIu64
	       " iterations in %.1f s (pump %" PRIu64 ", commit %" PRIu64
	       ", process %" PRIu64 ", session %" PRIu64 ")\n",
	       st->o.seed, iters, secs, st->iters[0], st->iters[1],
	       st->iters[2], st->iters[3]);
	printf("  sessions %" PRIu64 ", pump requests %" PRIu64
	       ", files checked %" PRIu64 "\n",
	       st->sessions, st->requests, st->files);
	printf("  disruptions:");
	for (i = 0; i < SD__COUNT; i++)
		printf(" %s=%" PRIu64, stress_disruption_names[i],
		       st->disruptions[i]);
	printf(" (%" PRIu64 " process disruptions came too late)", st->late);
	printf("\n  faults armed:");
	for (i = 0; i < SF__COUNT; i++)
		printf(" %s=%" PRIu64, stress_fault_names[i],
		       st->faults_armed[i]);
	printf("; fired %" PRIu64 "\n", st->faults_fired);
	for (i = 0; i < SV__COUNT; i++)
		if (st->xfailed[i])
			printf("  known issue (--xfail %s): %" PRIu64
			       " times, first at seed %016" PRIx64 "\n",
			       stress_violation_names[i], st->xfailed[i],
			       st->xfail_first_seed[i]);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	static struct stress_state st;
	char workdir[512];
	struct stress_rng r;
	pthread_t wd;
	uint64_t i, seed;
	double t0;
	int a, mode, own_workdir = 0;

#ifdef _WIN32
	st.o.modes = SM_PUMP | SM_COMMIT;
#else
	if (argc >= 2 && !strcmp(argv[1], "--relay"))
		return stress_relay_main(argc - 1, argv + 1);
	st.o.modes = SM_ALL;
#endif
	st.o.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	st.o.max_sessions = 16;
	st.o.max_procs = 4;
	st.o.iter_timeout = 60;
	st.o.berth = getenv("BERTH_STRESS_BERTH") ? getenv("BERTH_STRESS_BERTH")
						  : BERTH_STRESS_BERTH;
	st.o.rsync = "rsync";
	st.o.iterations = 0;
	st.o.force_workload = -1;
	st.o.force_disruption = -1;
	st.o.force_fault = -1;
	for (a = 1; a < argc; a++) {
		const char *v = a + 1 < argc ? argv[a + 1] : NULL;

		if (!strcmp(argv[a], "-v")) {
			st.o.verbose = 1;
			continue;
		}
		if (!v)
			usage();
		a++;
		if (!strcmp(argv[a - 1], "--workload") ||
		    !strcmp(argv[a - 1], "--sessions") ||
		    !strcmp(argv[a - 1], "--disruption") ||
		    !strcmp(argv[a - 1], "--fault") ||
		    !strcmp(argv[a - 1], "--skip"))
			add_pin(&st.o, argv[a - 1], v);
		if (!strcmp(argv[a - 1], "--seed"))
			st.o.seed = strtoull(v, NULL, 16);
		else if (!strcmp(argv[a - 1], "--iterations"))
			st.o.iterations = strtoull(v, NULL, 10);
		else if (!strcmp(argv[a - 1], "--duration"))
			st.o.duration = parse_duration(v);
		else if (!strcmp(argv[a - 1], "--mode"))
			st.o.modes = parse_list(v, mode_names, 4, "all");
		else if (!strcmp(argv[a - 1], "--max-sessions"))
			st.o.max_sessions = (unsigned)atoi(v);
		else if (!strcmp(argv[a - 1], "--max-procs"))
			st.o.max_procs = (unsigned)atoi(v);
		else if (!strcmp(argv[a - 1], "--timeout"))
			st.o.iter_timeout = atof(v);
		else if (!strcmp(argv[a - 1], "--xfail"))
			st.o.xfail = parse_list(v, stress_violation_names,
						SV__COUNT, NULL);
		else if (!strcmp(argv[a - 1], "--workload"))
			st.o.force_workload = parse_workload(v);
		else if (!strcmp(argv[a - 1], "--sessions"))
			st.o.force_sessions = (unsigned)atoi(v);
		else if (!strcmp(argv[a - 1], "--disruption"))
			st.o.force_disruption = (int)ffs((int)parse_list(
							v,
							stress_disruption_names,
							SD__COUNT, NULL)) -
						1;
		else if (!strcmp(argv[a - 1], "--fault"))
			parse_fault(&st.o, v);
		else if (!strcmp(argv[a - 1], "--skip"))
			parse_skip(&st.o, v);
		else if (!strcmp(argv[a - 1], "--berth"))
			st.o.berth = v;
		else if (!strcmp(argv[a - 1], "--rsync"))
			st.o.rsync = v;
		else if (!strcmp(argv[a - 1], "--workdir"))
			st.o.workdir = v;
		else
			usage();
	}
	if (!st.o.modes || st.o.max_sessions < 1 || st.o.max_sessions > 64 ||
	    st.o.max_procs < 1 || st.o.iter_timeout <= 0)
		usage();
#ifdef _WIN32
	if (st.o.modes & ~(unsigned)(SM_PUMP | SM_COMMIT)) {
		fprintf(stderr, "berth-stress: only the pump and commit modes "
				"run on Windows\n");
		return 64;
	}
#endif
	if (!st.o.iterations && !st.o.duration)
		st.o.iterations = 20;
	st.o.self = self_path();
	if (!st.o.workdir) {
		snprintf(workdir, sizeof(workdir), "%s/berth-stress-XXXXXX",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (!mkdtemp(workdir)) {
			perror("berth-stress: mkdtemp");
			return 1;
		}
		st.o.workdir = workdir;
		own_workdir = 1;
	}
	/* gdb (our child) may attach to us for the hang report; orphaned
	 * berth processes come back to us to be reaped. */
#ifndef _WIN32
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
#endif
	pthread_mutex_init(&st.lock, NULL);
	if (pthread_create(&wd, NULL, watchdog, &st))
		return 1;
	pthread_detach(wd);

	printf("berth-stress: seed %016" PRIx64 ", modes 0x%x, workdir %s\n",
	       st.o.seed, st.o.modes, st.o.workdir);
	fflush(stdout);
	t0 = stress_now();
	seed = st.o.seed;
	for (i = 0;; i++) {
		if (st.o.iterations && i >= st.o.iterations)
			break;
		if (st.o.duration && stress_now() - t0 >= st.o.duration)
			break;
		r.s = seed;
		pthread_mutex_lock(&st.lock);
		st.iter = i;
		st.iter_seed = seed;
		snprintf(st.iter_desc, sizeof(st.iter_desc), "(starting)");
		st.iter_deadline = stress_now() + st.o.iter_timeout;
		pthread_mutex_unlock(&st.lock);
		mode = pick_mode(&st, &r);
		pthread_mutex_lock(&st.lock);
		st.iter_mode = mode;
		pthread_mutex_unlock(&st.lock);
		switch (1 << mode) {
		case SM_PUMP:
			stress_pump_iter(&st, &r);
			break;
		case SM_COMMIT:
			stress_commit_iter(&st, &r);
			break;
#ifndef _WIN32
		case SM_PROCESS:
			stress_proc_iter(&st, &r, 0);
			break;
		default:
			stress_proc_iter(&st, &r, 1);
			break;
#endif
		}
		pthread_mutex_lock(&st.lock);
		st.iter_deadline = 0;
		st.npgids = 0;
		pthread_mutex_unlock(&st.lock);
		st.iters[mode]++;
		if (st.violation) {
			report(&st, stress_now() - t0, i + 1);
			fprintf(stderr,
				"\nberth-stress: VIOLATION in iteration "
				"%" PRIu64 " (%s)\n  %s\n  %s\n"
				"  replay: berth-stress --seed %016" PRIx64
				" --iterations 1 --mode %s%s\n",
				i, mode_names[mode], st.iter_desc,
				st.violation_msg, seed, mode_names[mode],
				st.o.pins);
			return 1;
		}
		seed = stress_mix(seed ^ 0x5bd1e995u);
	}
	report(&st, stress_now() - t0, i);
	if (own_workdir)
		stress_rm_rf(st.o.workdir);
	printf("berth-stress: no violations\n");
	return 0;
}
