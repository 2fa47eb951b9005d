/* cvm-vmmd's state (daemons/vmm/db.c) in a temporary SQLite database, and
 * the startup reconciliation (vmm_reconcile in daemons/vmm/work.c) over a
 * temporary run_dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include <cvmkit/file.h>

#include "vmm.h"

struct fx {
	char dir[64];
	char db_path[128];
	struct vmm_conf conf;
	struct vmm v;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	(void)snprintf(f->dir, sizeof(f->dir), "/tmp/cvm-vmm-state.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	(void)snprintf(f->db_path, sizeof(f->db_path), "%s/vmm.db", f->dir);
	vmm_conf_defaults(&f->conf);
	(void)snprintf(f->conf.run_dir, sizeof(f->conf.run_dir), "%s", f->dir);
	assert_int_equal(vmm_conf_check(&f->conf, err, sizeof(err)), CVM_OK);
	f->v.conf = &f->conf;
	assert_int_equal(vmm_db_open(f->db_path, &f->v.db, err, sizeof(err)), CVM_OK);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	vmm_db_close(f->v.db);
	(void)vmm_rmtree(f->dir);
	free(f);
	return 0;
}

static void make_vm(struct vmm_vm *vm, const char *id, const char *name, uint16_t port)
{
	memset(vm, 0, sizeof(*vm));
	(void)snprintf(vm->id, sizeof(vm->id), "%s", id);
	(void)snprintf(vm->name, sizeof(vm->name), "%s", name);
	(void)snprintf(vm->state, sizeof(vm->state), "%s", VMM_ST_CREATING);
	(void)snprintf(vm->spec.name, sizeof(vm->spec.name), "%s", name);
	(void)snprintf(vm->spec.image, sizeof(vm->spec.image), "img");
	vm->spec.vcpu = 1;
	vm->spec.memory_mb = 128;
	vm->spec.disk_gb = 1;
	if (port != 0) {
		vm->spec.port_count = 1;
		(void)snprintf(vm->spec.ports[0].protocol, 4, "tcp");
		vm->spec.ports[0].host_port = port;
		vm->spec.ports[0].vm_port = 80;
	}
}

#define ID(n) "00000000-0000-4000-8000-00000000000" #n

static void insert_allocates_the_lowest_free_cid_and_refuses_collisions(void **state)
{
	struct fx *f = *state;
	struct vmm_vm a, b, c, d, got;
	char err[256];

	make_vm(&a, ID(1), "a", 10001);
	make_vm(&b, ID(2), "b", 10002);
	make_vm(&c, ID(3), "c", 0);
	assert_int_equal(vmm_db_insert(f->v.db, &a, 1000, 3, err, sizeof(err)), CVM_OK);
	assert_int_equal(vmm_db_insert(f->v.db, &b, 1000, 3, err, sizeof(err)), CVM_OK);
	assert_int_equal(vmm_db_insert(f->v.db, &c, 1000, 3, err, sizeof(err)), CVM_OK);
	assert_int_equal(a.cid, 1000);
	assert_int_equal(b.cid, 1001);
	assert_int_equal(c.cid, 1002);
	make_vm(&d, ID(4), "d", 0);
	assert_int_equal(vmm_db_insert(f->v.db, &d, 1000, 3, err, sizeof(err)), CVM_E_POLICY);
	assert_non_null(strstr(err, "CID pool is exhausted"));
	/* removing b frees its CID for the next VM */
	assert_int_equal(vmm_db_delete(f->v.db, ID(2)), CVM_OK);
	assert_int_equal(vmm_db_insert(f->v.db, &d, 1000, 3, err, sizeof(err)), CVM_OK);
	assert_int_equal(d.cid, 1001);
	/* a name or a host port already taken */
	make_vm(&got, ID(5), "a", 0);
	assert_int_equal(vmm_db_insert(f->v.db, &got, 1000, 10, err, sizeof(err)), CVM_E_POLICY);
	assert_non_null(strstr(err, "a VM named a already exists"));
	make_vm(&got, ID(5), "e", 10001);
	assert_int_equal(vmm_db_insert(f->v.db, &got, 1000, 10, err, sizeof(err)), CVM_E_POLICY);
	assert_non_null(strstr(err, "already mapped by VM a"));
	/* a name equal to another VM's id would make lookups ambiguous */
	make_vm(&got, ID(6), ID(1), 0);
	assert_int_equal(vmm_db_insert(f->v.db, &got, 1000, 10, err, sizeof(err)), CVM_E_POLICY);
}

static void state_changes_are_persisted_and_lookups_take_id_or_name(void **state)
{
	struct fx *f = *state;
	struct vmm_vm a, got;
	struct vmm_vm *all = NULL;
	size_t n = 0;
	char err[256];

	make_vm(&a, ID(1), "alpha", 10005);
	a.spec.kms_url_count = 1;
	(void)snprintf(a.spec.kms_urls[0], VMM_URL_MAX, "https://kms:8000");
	a.spec.app_image_count = 2;
	(void)snprintf(a.spec.app_images[0], sizeof(a.spec.app_images[0]), "web.tar");
	(void)snprintf(a.spec.app_images[1], sizeof(a.spec.app_images[1]), "db.tar");
	assert_int_equal(vmm_db_insert(f->v.db, &a, 1000, 10, err, sizeof(err)), CVM_OK);
	assert_int_equal(vmm_db_get(f->v.db, "alpha", &got), CVM_OK);
	assert_string_equal(got.id, ID(1));
	assert_string_equal(got.state, VMM_ST_CREATING);
	assert_string_equal(got.spec.kms_urls[0], "https://kms:8000");
	assert_int_equal(got.spec.app_image_count, 2);
	assert_string_equal(got.spec.app_images[1], "db.tar");
	assert_int_equal(got.spec.ports[0].host_port, 10005);
	/* the progress history: in order, and gone with the row */
	{
		json_t *h = NULL;

		assert_int_equal(vmm_db_set_progress(f->v.db, ID(1), VMM_PROGRESS_START, NULL), CVM_OK);
		for (int i = 0; i < VMM_HISTORY_MAX + 5; i++)
			assert_int_equal(vmm_db_set_progress(f->v.db, ID(1), i % 2 ? "b" : "a", NULL),
			                 CVM_OK);
		assert_int_equal(vmm_db_history(f->v.db, ID(1), &h), CVM_OK);
		assert_int_equal(json_array_size(h), VMM_HISTORY_MAX); /* capped: the oldest went */
		assert_string_equal(json_string_value(json_object_get(json_array_get(h, 0), "progress")),
		                    "b");
		assert_string_equal(
		    json_string_value(json_object_get(json_array_get(h, VMM_HISTORY_MAX - 1), "progress")),
		    "a");
		json_decref(h);
	}
	assert_int_equal(vmm_db_set_state(f->v.db, ID(1), VMM_ST_RUNNING, 4242, 77, "boom"), CVM_OK);
	/* reopen: the change is on disk */
	vmm_db_close(f->v.db);
	assert_int_equal(vmm_db_open(f->db_path, &f->v.db, err, sizeof(err)), CVM_OK);
	assert_int_equal(vmm_db_get(f->v.db, ID(1), &got), CVM_OK);
	assert_string_equal(got.state, VMM_ST_RUNNING);
	assert_int_equal(got.pid, 4242);
	assert_int_equal(got.started, 77);
	assert_string_equal(got.last_error, "boom");
	/* NULL keeps the last error */
	assert_int_equal(vmm_db_set_state(f->v.db, ID(1), VMM_ST_STOPPED, 0, 0, NULL), CVM_OK);
	assert_int_equal(vmm_db_get(f->v.db, ID(1), &got), CVM_OK);
	assert_string_equal(got.last_error, "boom");
	assert_int_equal(vmm_db_set_state(f->v.db, ID(9), VMM_ST_STOPPED, 0, 0, NULL), CVM_E_INVAL);
	assert_int_equal(vmm_db_get(f->v.db, "nosuch", &got), CVM_E_INVAL);
	got.spec.vcpu = 3;
	assert_int_equal(vmm_db_set_spec(f->v.db, &got, err, sizeof(err)), CVM_OK);
	assert_int_equal(vmm_db_list(f->v.db, &all, &n), CVM_OK);
	assert_int_equal(n, 1);
	assert_int_equal(all[0].spec.vcpu, 3);
	free(all);
	assert_int_equal(vmm_db_delete(f->v.db, ID(1)), CVM_OK);
	assert_int_equal(vmm_db_delete(f->v.db, ID(1)), CVM_E_INVAL);
	{
		json_t *h = NULL;

		assert_int_equal(vmm_db_history(f->v.db, ID(1), &h), CVM_OK);
		assert_int_equal(json_array_size(h), 0);
		json_decref(h);
	}
}

static void a_file_that_is_not_our_database_is_refused(void **state)
{
	struct fx *f = *state;
	struct vmm_db *db = NULL;
	char path[128], err[256];
	FILE *fp;

	(void)snprintf(path, sizeof(path), "%s/other.db", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	(void)fputs("not sqlite at all, just text that is long enough to be a header ...........", fp);
	(void)fclose(fp);
	assert_int_not_equal(vmm_db_open(path, &db, err, sizeof(err)), CVM_OK);
	assert_null(db);
}

static void mkfile(const char *dir, const char *rel)
{
	char p[512];
	FILE *fp;

	(void)snprintf(p, sizeof(p), "%s/%s", dir, rel);
	fp = fopen(p, "w");
	assert_non_null(fp);
	(void)fclose(fp);
}

static void mkdirf(const char *dir, const char *rel)
{
	char p[512];

	(void)snprintf(p, sizeof(p), "%s/%s", dir, rel);
	assert_int_equal(mkdir(p, 0700), 0);
}

static bool there(const char *dir, const char *rel)
{
	char p[512];

	(void)snprintf(p, sizeof(p), "%s/%s", dir, rel);
	return access(p, F_OK) == 0;
}

static void reconcile_finishes_or_undoes_what_a_crash_interrupted(void **state)
{
	struct fx *f = *state;
	struct vmm_vm vm, got;
	char err[256];

	/* 1: creating, the directory complete (renamed, vm.json): finished */
	make_vm(&vm, ID(1), "done", 0);
	assert_int_equal(vmm_db_insert(f->v.db, &vm, 1000, 10, err, sizeof(err)), CVM_OK);
	mkdirf(f->dir, ID(1));
	mkfile(f->dir, ID(1) "/vm.json");
	/* 2: creating, only a temp dir: undone */
	make_vm(&vm, ID(2), "partial", 0);
	assert_int_equal(vmm_db_insert(f->v.db, &vm, 1000, 10, err, sizeof(err)), CVM_OK);
	mkdirf(f->dir, ".tmp-" ID(2));
	mkfile(f->dir, ".tmp-" ID(2) "/vm.json");
	/* 3: removing, directory half gone: finished */
	make_vm(&vm, ID(3), "going", 0);
	assert_int_equal(vmm_db_insert(f->v.db, &vm, 1000, 10, err, sizeof(err)), CVM_OK);
	assert_int_equal(vmm_db_set_state(f->v.db, ID(3), VMM_ST_REMOVING, 0, 0, NULL), CVM_OK);
	mkdirf(f->dir, ".rm-" ID(3));
	/* 4: running, but its pid is not a QEMU of this work dir: stopped */
	make_vm(&vm, ID(4), "ghost", 0);
	assert_int_equal(vmm_db_insert(f->v.db, &vm, 1000, 10, err, sizeof(err)), CVM_OK);
	assert_int_equal(vmm_db_set_state(f->v.db, ID(4), VMM_ST_RUNNING, (int64_t)getpid(), 5, NULL),
	                 CVM_OK);
	mkdirf(f->dir, ID(4));
	mkfile(f->dir, ID(4) "/vm.json");
	/* 6: starting, no QEMU (killed while it measured): left to be resumed */
	make_vm(&vm, ID(5), "half-started", 0);
	assert_int_equal(vmm_db_insert(f->v.db, &vm, 1000, 10, err, sizeof(err)), CVM_OK);
	assert_int_equal(vmm_db_set_state(f->v.db, ID(5), VMM_ST_STARTING, 0, 0, NULL), CVM_OK);
	mkdirf(f->dir, ID(5));
	mkfile(f->dir, ID(5) "/vm.json");
	/* 5: orphans */
	mkdirf(f->dir, ".tmp-" ID(7));
	mkdirf(f->dir, ID(8));

	assert_int_equal(vmm_reconcile(&f->v), CVM_OK);
	assert_int_equal(vmm_db_get(f->v.db, ID(1), &got), CVM_OK);
	assert_string_equal(got.state, VMM_ST_STOPPED);
	assert_true(there(f->dir, ID(1) "/vm.json"));
	assert_int_equal(vmm_db_get(f->v.db, ID(2), &got), CVM_E_INVAL);
	assert_false(there(f->dir, ".tmp-" ID(2)));
	assert_int_equal(vmm_db_get(f->v.db, ID(3), &got), CVM_E_INVAL);
	assert_false(there(f->dir, ".rm-" ID(3)));
	assert_int_equal(vmm_db_get(f->v.db, ID(4), &got), CVM_OK);
	assert_string_equal(got.state, VMM_ST_STOPPED);
	assert_int_equal(got.pid, 0);
	assert_int_equal(vmm_db_get(f->v.db, ID(5), &got), CVM_OK);
	assert_string_equal(got.state, VMM_ST_STARTING);
	assert_false(there(f->dir, ".tmp-" ID(7)));
	/* a VM directory without a row (a lost database) is kept aside */
	assert_false(there(f->dir, ID(8)));
	assert_true(there(f->dir, ".orphan-" ID(8)));
	/* a second pass changes nothing */
	assert_int_equal(vmm_reconcile(&f->v), CVM_OK);
	assert_int_equal(vmm_db_get(f->v.db, ID(1), &got), CVM_OK);
	assert_string_equal(got.state, VMM_ST_STOPPED);
}

static void proc_alive_needs_the_work_dir_in_the_command_line(void **state)
{
	(void)state;
	assert_true(vmm_proc_alive((int64_t)getpid(), NULL));
	assert_false(vmm_proc_alive((int64_t)getpid(), "/nonexistent/work/dir/of/a/vm"));
	assert_false(vmm_proc_alive(0, NULL));
	assert_false(vmm_proc_alive(-1, NULL));
	assert_false(vmm_proc_alive(0x7fffffff, NULL));
}

/* The guest's host channel (channel.c): what each line does to the VM's
 * record, and the socket path end to end with a listening socket standing
 * in for QEMU's end. */
static void channel_lines_set_progress_and_errors_and_ignore_the_rest(void **state)
{
	struct fx *f = *state;
	struct vmm_vm vm, got;
	char err[256], big[600], line[800];

	make_vm(&vm, ID(7), "ch", 0);
	(void)snprintf(vm.app_id, sizeof(vm.app_id), "1111111111111111111111111111111111111111");
	assert_int_equal(vmm_db_insert(f->v.db, &vm, 1000, 10, err, sizeof(err)), CVM_OK);
#define LINE(s) vmm_channel_line(&f->v, ID(7), s, strlen(s))
	LINE("{\"event\":\"boot-progress\",\"payload\":\"storage: formatting /dev/vdb\"}");
	assert_int_equal(vmm_db_get(f->v.db, ID(7), &got), CVM_OK);
	assert_string_equal(got.boot_progress, "storage: formatting /dev/vdb");
	/* not JSON, no event, a wrong payload type, an unknown event: nothing changes */
	LINE("not json");
	LINE("{\"payload\":\"x\"}");
	LINE("{\"event\":\"boot-progress\",\"payload\":7}");
	LINE("{\"event\":\"future-event\",\"payload\":\"x\"}");
	LINE("{\"event\":\"boot-progress\",\"event\":\"boot-error\",\"payload\":\"dup\"}");
	assert_int_equal(vmm_db_get(f->v.db, ID(7), &got), CVM_OK);
	assert_string_equal(got.boot_progress, "storage: formatting /dev/vdb");
	assert_string_equal(got.last_error, "");
	/* control characters become '?'; a long payload is cut */
	LINE("{\"event\":\"boot-progress\",\"payload\":\"a\\u0007b\\nc\"}");
	assert_int_equal(vmm_db_get(f->v.db, ID(7), &got), CVM_OK);
	assert_string_equal(got.boot_progress, "a?b?c");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	(void)snprintf(line, sizeof(line), "{\"event\":\"boot-progress\",\"payload\":\"%s\"}", big);
	LINE(line);
	assert_int_equal(vmm_db_get(f->v.db, ID(7), &got), CVM_OK);
	assert_int_equal(strlen(got.boot_progress), VMM_PROGRESS_MAX - 1);
	/* an error is kept apart from the progress */
	LINE("{\"event\":\"boot-error\",\"payload\":\"the storage hook failed\"}");
	assert_int_equal(vmm_db_get(f->v.db, ID(7), &got), CVM_OK);
	assert_string_equal(got.last_error, "the storage hook failed");
	assert_string_equal(got.boot_progress, "boot failed");
	/* instance-info: the seed is kept in shared/.instance_info for the next
	 * boot, with the VM's own app id (not the guest's); a malformed one is not */
	mkdirf(f->dir, ID(7));
	mkdirf(f->dir, ID(7) "/shared");
	LINE("{\"event\":\"instance-info\",\"payload\":{\"app_id\":"
	     "\"ffffffffffffffffffffffffffffffffffffffff\","
	     "\"instance_id\":\"0102030405060708090a0b0c0d0e0f1011121314\",\"instance_id_seed\":\"zz\"}}");
	assert_false(there(f->dir, ID(7) "/shared/.instance_info"));
	LINE("{\"event\":\"instance-info\",\"payload\":{\"app_id\":"
	     "\"ffffffffffffffffffffffffffffffffffffffff\","
	     "\"instance_id\":\"0102030405060708090a0b0c0d0e0f1011121314\","
	     "\"instance_id_seed\":\"a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4\"}}");
	{
		char path[600];
		uint8_t *buf = NULL;
		size_t len = 0;
		json_t *o;

		(void)snprintf(path, sizeof(path), "%s/%s/shared/.instance_info", f->dir, ID(7));
		assert_int_equal(cvm_file_read(path, 4096, &buf, &len), CVM_OK);
		o = json_loadb((const char *)buf, len, 0, NULL);
		assert_non_null(o);
		assert_string_equal(json_string_value(json_object_get(o, "app_id")),
		                    "1111111111111111111111111111111111111111");
		assert_string_equal(json_string_value(json_object_get(o, "instance_id_seed")),
		                    "a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4");
		json_decref(o);
		free(buf);
	}
#undef LINE
}

static void stop_loop(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)event_base_loopbreak(arg);
}

static void channel_reads_the_socket_line_by_line(void **state)
{
	struct fx *f = *state;
	struct vmm_vm vm, got;
	struct sockaddr_un sa;
	struct timeval tv = {0, 300000};
	char err[256], wd[256], path[300];
	struct event *t;
	int srv, cl;
	static const char part1[] = "{\"event\":\"boot-progress\",\"payload\":\"docker: ";
	static const char part2[] =
	    "ready\"}\n{\"event\":\"instance-info\",\"payload\":{\"app_id\":\"ab\"}}\n";

	make_vm(&vm, ID(8), "sock", 0);
	assert_int_equal(vmm_db_insert(f->v.db, &vm, 1000, 10, err, sizeof(err)), CVM_OK);
	assert_int_equal(vmm_db_set_state(f->v.db, ID(8), VMM_ST_RUNNING, (int64_t)getpid(), 1, ""), CVM_OK);
	(void)snprintf(wd, sizeof(wd), "%s/%s", f->dir, ID(8));
	assert_int_equal(mkdir(wd, 0700), 0);
	(void)snprintf(path, sizeof(path), "%s/guest.sock", wd);
	srv = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(srv >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(srv, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(srv, 1), 0);

	f->v.base = event_base_new();
	assert_non_null(f->v.base);
	vmm_channel_open(&f->v, ID(8));
	assert_non_null(f->v.chans);
	cl = accept(srv, NULL, NULL);
	assert_true(cl >= 0);
	/* a line split over two writes is read once whole */
	assert_int_equal(write(cl, part1, strlen(part1)), (ssize_t)strlen(part1));
	t = evtimer_new(f->v.base, stop_loop, f->v.base);
	assert_non_null(t);
	assert_int_equal(event_add(t, &tv), 0);
	(void)event_base_dispatch(f->v.base);
	assert_int_equal(vmm_db_get(f->v.db, ID(8), &got), CVM_OK);
	assert_string_equal(got.boot_progress, "");
	assert_int_equal(write(cl, part2, strlen(part2)), (ssize_t)strlen(part2));
	assert_int_equal(event_add(t, &tv), 0);
	(void)event_base_dispatch(f->v.base);
	assert_int_equal(vmm_db_get(f->v.db, ID(8), &got), CVM_OK);
	assert_string_equal(got.boot_progress, "docker: ready");
	/* a burst: at most 20 lines a second are handled, the rest dropped
	 * (the 1-2 lines above may share the second: the last one kept is at
	 * most line 20 of the burst, never a later one) */
	{
		char burst[64 * 30];
		size_t off = 0;

		for (int i = 1; i <= 30; i++)
			off += (size_t)snprintf(burst + off, sizeof(burst) - off,
			                        "{\"event\":\"boot-progress\",\"payload\":\"b%02d\"}\n", i);
		assert_int_equal(write(cl, burst, off), (ssize_t)off);
		assert_int_equal(event_add(t, &tv), 0);
		(void)event_base_dispatch(f->v.base);
		assert_int_equal(vmm_db_get(f->v.db, ID(8), &got), CVM_OK);
		assert_true(strcmp(got.boot_progress, "docker: ready") == 0 ||
		            (got.boot_progress[0] == 'b' && strcmp(got.boot_progress, "b20") <= 0));
	}
	/* a line over the cap closes the connection; the channel would wait to
	 * reconnect while the VM runs, but its "QEMU" (this process) does not
	 * name the work dir, so the VM is marked stopped and the channel ends */
	{
		char *flood = malloc(VMM_CHANNEL_LINE_MAX * 3);

		assert_non_null(flood);
		memset(flood, 'y', VMM_CHANNEL_LINE_MAX * 3);
		assert_int_equal(write(cl, flood, VMM_CHANNEL_LINE_MAX * 3),
		                 (ssize_t)(VMM_CHANNEL_LINE_MAX * 3));
		free(flood);
	}
	assert_int_equal(event_add(t, &tv), 0);
	(void)event_base_dispatch(f->v.base);
	{
		char b;

		ssize_t got_n = read(cl, &b, 1);

		/* closed by the daemon: EOF, or a reset (it had unread bytes) */
		assert_true(got_n == 0 || (got_n < 0 && errno == ECONNRESET));
	}
	assert_null(f->v.chans);
	assert_int_equal(vmm_db_get(f->v.db, ID(8), &got), CVM_OK);
	assert_string_equal(got.state, VMM_ST_STOPPED);
	/* closing what is gone, or everything, is harmless */
	vmm_channel_close(&f->v, ID(8));
	vmm_channel_close_all(&f->v);
	(void)close(cl);
	(void)close(srv);
	event_free(t);
	event_base_free(f->v.base);
	f->v.base = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(insert_allocates_the_lowest_free_cid_and_refuses_collisions,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(state_changes_are_persisted_and_lookups_take_id_or_name, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(a_file_that_is_not_our_database_is_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(reconcile_finishes_or_undoes_what_a_crash_interrupted, setup,
	                                    teardown),
	    cmocka_unit_test(proc_alive_needs_the_work_dir_in_the_command_line),
	    cmocka_unit_test_setup_teardown(channel_lines_set_progress_and_errors_and_ignore_the_rest, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(channel_reads_the_socket_line_by_line, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
