/* The probe's command line: the VM's, rewritten so that QEMU builds the
 * same ACPI tables while touching nothing of the real VM (the rules are in
 * include/cvmkit/qemu.h, cvm_qemu_probe_cmd_make). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cvmkit/err.h>
#include <cvmkit/qemu.h>

#include "qemu_int.h"

#define ITEMS_MAX 256u
#define PROBE_APPEND "console=ttyS0 loglevel=0 quiet panic=-1"

/* QEMU options that take no value (QEMU 7 to 9). Any other option takes
 * the next argument as its value. */
static const char *const flags[] = {
    "nographic",
    "nodefaults",
    "no-user-config",
    "nodefconfig",
    "enable-kvm",
    "no-kvm",
    "no-reboot",
    "no-shutdown",
    "S",
    "s",
    "daemonize",
    "snapshot",
    "no-hpet",
    "no-acpi",
    "usb",
    "full-screen",
    "alt-grab",
    "ctrl-grab",
    "win2k-hack",
    "no-fd-bootchk",
    "no-quit",
    "only-migratable",
    "preconfig",
    "enable-sync-profile",
    "version",
    "help",
    "h",
    "semihosting",
    "no-frame",
    "old-param",
    "xen-attach",
    "no-kvm-irqchip",
    "no-kvm-pit",
    "no-kvm-pit-reinjection",
    "rtc-td-hack",
    "no-graphic",
};

/* Options dropped with their value (rule 8), or replaced by the probe's
 * own (rule 1). */
static const char *const dropped[] = {
    "kernel", "initrd", "append",  "dtb",     "monitor", "mon",      "qmp",    "qmp-pretty", "gdb",
    "vnc",    "spice",  "display", "pidfile", "D",       "incoming", "loadvm", "runas",      "chroot",
};
static const char *const dropped_flags[] = {"S", "s", "daemonize", "snapshot", "no-reboot"};

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}
#define IN(s, list) in_list((s), (list), sizeof(list) / sizeof((list)[0]))

/* An option list "a,b=c,,d": items split at single commas (",," is an
 * escaped comma and stays in its item). The items point into `buf`. */
struct optl {
	char *buf;
	char *items[ITEMS_MAX + 1]; /* one spare: a rule adds an item */
	size_t n;
};

static int optl_split(const char *s, struct optl *o)
{
	size_t len = strlen(s);
	char *w;

	memset(o, 0, sizeof(*o));
	o->buf = malloc(len + 1);
	if (o->buf == NULL)
		return CVM_E_NOMEM;
	w = o->buf;
	o->items[o->n++] = w;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == ',' && i + 1 < len && s[i + 1] == ',') {
			*w++ = ',';
			*w++ = ',';
			i++;
			continue;
		}
		if (s[i] == ',') {
			*w++ = '\0';
			if (o->n == ITEMS_MAX)
				return CVM_E_TOO_LARGE;
			o->items[o->n++] = w;
			continue;
		}
		*w++ = s[i];
	}
	*w = '\0';
	return CVM_OK;
}

static bool item_is(const char *item, const char *key)
{
	const char *eq = strchr(item, '=');

	return eq != NULL && (size_t)(eq - item) == strlen(key) && memcmp(item, key, strlen(key)) == 0;
}

/* optl_get returns the value of `key`, or NULL. */
static const char *optl_get(const struct optl *o, const char *key)
{
	for (size_t i = 0; i < o->n; i++)
		if (item_is(o->items[i], key))
			return o->items[i] + strlen(key) + 1;
	return NULL;
}

/* optl_first is the implied first item ("user" in "user,id=n0"), or the
 * value of `key` ("type=user"), or "". */
static const char *optl_type(const struct optl *o, const char *key)
{
	const char *v;

	if (o->n > 0 && strchr(o->items[0], '=') == NULL)
		return o->items[0];
	v = optl_get(o, key);
	return v != NULL ? v : "";
}

static void optl_drop(struct optl *o, const char *key)
{
	size_t j = 0;

	for (size_t i = 0; i < o->n; i++)
		if (!item_is(o->items[i], key) && strcmp(o->items[i], key) != 0)
			o->items[j++] = o->items[i];
	o->n = j;
}

/* The output arguments. */
struct argl {
	char **v;
	size_t n, cap;
	int err;
};

static void push_take(struct argl *a, char *s)
{
	if (a->err != CVM_OK || s == NULL) {
		if (a->err == CVM_OK)
			a->err = CVM_E_NOMEM;
		free(s);
		return;
	}
	if (a->n + 1 >= a->cap) {
		size_t cap = a->cap == 0 ? 64 : a->cap * 2;
		char **nv;

		if (cap > CVM_QEMU_ARGS_MAX * 2 + 64) {
			a->err = CVM_E_TOO_LARGE;
			free(s);
			return;
		}
		nv = calloc(cap, sizeof(*nv));
		if (nv == NULL) {
			a->err = CVM_E_NOMEM;
			free(s);
			return;
		}
		if (a->n != 0)
			memcpy(nv, a->v, a->n * sizeof(*nv));
		free(a->v);
		a->v = nv;
		a->cap = cap;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
}

static void push(struct argl *a, const char *s)
{
	push_take(a, strdup(s));
}

static void pushf(struct argl *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pushf(struct argl *a, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n >= 0) {
		s = malloc((size_t)n + 1);
		if (s != NULL) {
			va_start(ap, fmt);
			(void)vsnprintf(s, (size_t)n + 1, fmt, ap);
			va_end(ap);
		}
	}
	push_take(a, s);
}

/* push_opts pushes `prefix` (may be "") followed by the items joined. */
static void push_optl(struct argl *a, const char *prefix, const struct optl *o)
{
	size_t len = strlen(prefix) + 1;
	char *s, *w;

	for (size_t i = 0; i < o->n; i++)
		len += strlen(o->items[i]) + 1;
	s = malloc(len);
	if (s == NULL) {
		push_take(a, NULL);
		return;
	}
	w = s;
	memcpy(w, prefix, strlen(prefix));
	w += strlen(prefix);
	for (size_t i = 0; i < o->n; i++) {
		size_t k = strlen(o->items[i]);

		if (w != s && w[-1] != ',')
			*w++ = ',';
		memcpy(w, o->items[i], k);
		w += k;
	}
	*w = '\0';
	push_take(a, s);
}

void cvm_qemu_probe_cmd_cleanup(struct cvm_qemu_probe_cmd *c)
{
	if (c == NULL)
		return;
	if (c->args != NULL)
		for (size_t i = 0; i < c->count; i++)
			free(c->args[i]);
	free(c->args);
	memset(c, 0, sizeof(*c));
}

/* opt_name returns the option's name without its dashes, or NULL for a
 * positional argument. */
static const char *opt_name(const char *arg)
{
	if (arg[0] != '-' || arg[1] == '\0')
		return NULL;
	if (arg[1] == '-' && arg[2] != '\0')
		return arg + 2;
	return arg + 1;
}

/* The first serial port, found before rewriting. */
struct scan {
	size_t first_serial;   /* index of its value, or SIZE_MAX */
	char *console_chardev; /* the chardev id it writes to, or NULL */
	bool nographic, nodefaults;
};

static int scan_args(const char *const *args, size_t count, struct scan *s, char *err, size_t err_len)
{
	char *isa_chardev = NULL;
	int r = CVM_OK;

	memset(s, 0, sizeof(*s));
	s->first_serial = SIZE_MAX;
	for (size_t i = 0; i < count && r == CVM_OK; i++) {
		const char *o = opt_name(args[i]);
		struct optl l;

		if (o == NULL)
			continue;
		if (IN(o, flags)) {
			if (strcmp(o, "nographic") == 0)
				s->nographic = true;
			if (strcmp(o, "nodefaults") == 0)
				s->nodefaults = true;
			continue;
		}
		if (i + 1 == count) {
			qemu_errf(err, err_len, "option %s has no value (the last argument)", args[i]);
			r = CVM_E_FORMAT;
			break;
		}
		i++;
		if (strcmp(o, "readconfig") == 0) {
			qemu_errf(err, err_len,
			          "-readconfig is not supported: give the options on the command line");
			r = CVM_E_UNSUPPORTED;
			break;
		}
		if (strcmp(o, "serial") == 0 && s->first_serial == SIZE_MAX) {
			s->first_serial = i;
			if (strncmp(args[i], "chardev:", 8) == 0) {
				s->console_chardev = strdup(args[i] + 8);
				if (s->console_chardev == NULL)
					r = CVM_E_NOMEM;
			}
		}
		if (strcmp(o, "device") == 0 && isa_chardev == NULL) {
			r = optl_split(args[i], &l);
			if (r == CVM_OK && strcmp(optl_type(&l, "driver"), "isa-serial") == 0 &&
			    optl_get(&l, "chardev") != NULL) {
				isa_chardev = strdup(optl_get(&l, "chardev"));
				if (isa_chardev == NULL)
					r = CVM_E_NOMEM;
			}
			free(l.buf);
			if (r != CVM_OK)
				qemu_errf(err, err_len, "-device '%.200s' has too many options", args[i]);
		}
	}
	if (r == CVM_OK && s->first_serial == SIZE_MAX) {
		if (isa_chardev != NULL) {
			s->console_chardev = isa_chardev;
			isa_chardev = NULL;
		} else if (s->nodefaults) {
			qemu_errf(
			    err, err_len,
			    "the command line has -nodefaults and no serial port: the probe prints on the "
			    "first serial port (add -serial or an isa-serial device to the VM)");
			r = CVM_E_UNSUPPORTED;
		}
	}
	free(isa_chardev);
	return r;
}

static int rewrite_one(struct argl *a, const char *o, const char *v, size_t vi, const struct scan *s,
                       const char *work, size_t *tpm_count, char *err, size_t err_len)
{
	struct optl l;
	int r;

	if (IN(o, dropped))
		return CVM_OK;
	if (strcmp(o, "serial") == 0) {
		push(a, "-serial");
		if (strncmp(v, "chardev:", 8) == 0)
			push(a, v);
		else if (vi == s->first_serial)
			pushf(a, "file:%s/console.log", work);
		else
			push(a, "null");
		return CVM_OK;
	}
	if (strcmp(o, "tpmdev") == 0) {
		r = optl_split(v, &l);
		if (r == CVM_OK && optl_get(&l, "id") == NULL)
			r = CVM_E_FORMAT;
		if (r == CVM_OK && *tpm_count == CVM_QEMU_TPM_MAX)
			r = CVM_E_TOO_LARGE;
		if (r != CVM_OK) {
			qemu_errf(err, err_len, "-tpmdev '%.200s' has no id, or there are more than %u", v,
			          CVM_QEMU_TPM_MAX);
			free(l.buf);
			return r;
		}
		push(a, "-chardev");
		pushf(a, "socket,id=cvm-probe-tpm%zu,path=%s/swtpm%zu.sock", *tpm_count, work, *tpm_count);
		push(a, "-tpmdev");
		pushf(a, "emulator,id=%s,chardev=cvm-probe-tpm%zu", optl_get(&l, "id"), *tpm_count);
		(*tpm_count)++;
		free(l.buf);
		return CVM_OK;
	}
	if (v[0] == '{' && (strcmp(o, "blockdev") == 0 || strcmp(o, "netdev") == 0 ||
	                    strcmp(o, "chardev") == 0 || strcmp(o, "tpmdev") == 0)) {
		qemu_errf(err, err_len,
		          "a JSON -%s is not supported (the probe rewrites it): use the key=value form", o);
		return CVM_E_UNSUPPORTED;
	}
	if (strcmp(o, "object") == 0 && v[0] == '{') {
		if (strstr(v, "memory-backend-file") != NULL) {
			qemu_errf(err, err_len,
			          "a JSON -object memory-backend-file is not supported: use key=value");
			return CVM_E_UNSUPPORTED;
		}
		push(a, "-object");
		push(a, v);
		return CVM_OK;
	}
	if (strcmp(o, "drive") != 0 && strcmp(o, "blockdev") != 0 && strcmp(o, "netdev") != 0 &&
	    strcmp(o, "nic") != 0 && strcmp(o, "net") != 0 && strcmp(o, "chardev") != 0 &&
	    strcmp(o, "object") != 0) {
		pushf(a, "-%s", o);
		push(a, v);
		return CVM_OK;
	}
	r = optl_split(v, &l);
	if (r != CVM_OK) {
		qemu_errf(err, err_len, "-%s '%.200s' has too many options", o, v);
		free(l.buf);
		return r;
	}
	pushf(a, "-%s", o);
	if (strcmp(o, "drive") == 0) {
		optl_drop(&l, "snapshot");
		l.items[l.n++] = (char *)"snapshot=on";
		push_optl(a, "", &l);
	} else if (strcmp(o, "blockdev") == 0) {
		optl_drop(&l, "read-only");
		optl_drop(&l, "auto-read-only");
		l.items[l.n++] = (char *)"read-only=on";
		push_optl(a, "", &l);
	} else if (strcmp(o, "netdev") == 0) {
		const char *id = optl_get(&l, "id");

		if (strcmp(optl_type(&l, "type"), "user") == 0) {
			optl_drop(&l, "hostfwd");
			optl_drop(&l, "guestfwd");
			optl_drop(&l, "smb");
			push_optl(a, "", &l);
		} else if (id == NULL) {
			qemu_errf(err, err_len, "-netdev '%.200s' has no id", v);
			r = CVM_E_FORMAT;
		} else {
			pushf(a, "user,id=%s", id);
		}
	} else if (strcmp(o, "nic") == 0 || strcmp(o, "net") == 0) {
		const char *type = optl_type(&l, "type");

		if (strcmp(type, "user") == 0) {
			optl_drop(&l, "hostfwd");
			optl_drop(&l, "guestfwd");
			optl_drop(&l, "smb");
			push_optl(a, "", &l);
		} else if (strcmp(type, "none") == 0 || (strcmp(o, "net") == 0 && strcmp(type, "nic") == 0)) {
			push_optl(a, "", &l);
		} else {
			struct optl k = {.buf = NULL, .n = 0};

			k.items[k.n++] = (char *)"user";
			for (size_t i = 0; i < l.n; i++)
				if (item_is(l.items[i], "model") || item_is(l.items[i], "mac") ||
				    item_is(l.items[i], "id") || item_is(l.items[i], "netdev"))
					k.items[k.n++] = l.items[i];
			push_optl(a, "", &k);
		}
	} else if (strcmp(o, "chardev") == 0) {
		const char *id = optl_get(&l, "id");
		bool mux = optl_get(&l, "mux") != NULL && strcmp(optl_get(&l, "mux"), "on") == 0;

		if (id == NULL) {
			qemu_errf(err, err_len, "-chardev '%.200s' has no id", v);
			r = CVM_E_FORMAT;
		} else if (s->console_chardev != NULL && strcmp(id, s->console_chardev) == 0) {
			pushf(a, "file,id=%s,path=%s/console.log%s", id, work, mux ? ",mux=on" : "");
		} else {
			pushf(a, "null,id=%s%s", id, mux ? ",mux=on" : "");
		}
	} else { /* object */
		if (strcmp(optl_type(&l, "qom-type"), "memory-backend-file") == 0) {
			const char *id = optl_get(&l, "id"), *size = optl_get(&l, "size");

			if (id == NULL || size == NULL) {
				qemu_errf(err, err_len, "-object '%.200s' has no id or size", v);
				r = CVM_E_FORMAT;
			} else {
				pushf(a, "memory-backend-ram,id=%s,size=%s", id, size);
			}
		} else {
			push(a, v);
		}
	}
	free(l.buf);
	return r;
}

int cvm_qemu_probe_cmd_make(const char *const *args, size_t count, const char *kernel, const char *initrd,
                            const char *work_dir, struct cvm_qemu_probe_cmd *out, char *err, size_t err_len)
{
	struct argl a = {.v = NULL, .n = 0, .cap = 0, .err = CVM_OK};
	struct scan s = {.console_chardev = NULL};
	size_t tpm_count = 0;
	int r;

	memset(out, 0, sizeof(*out));
	if ((args == NULL && count != 0) || kernel == NULL || initrd == NULL || work_dir == NULL) {
		qemu_errf(err, err_len, "the probe needs the arguments, a kernel, an initrd and a work dir");
		return CVM_E_INVAL;
	}
	if (strchr(work_dir, ',') != NULL || work_dir[0] == '\0') {
		qemu_errf(err, err_len,
		          "the work dir '%.200s' is empty or has a comma (QEMU option lists cannot hold it)",
		          work_dir);
		return CVM_E_INVAL;
	}
	if (count > CVM_QEMU_ARGS_MAX) {
		qemu_errf(err, err_len, "the command line has %zu arguments, over the cap of %u", count,
		          CVM_QEMU_ARGS_MAX);
		return CVM_E_TOO_LARGE;
	}
	for (size_t i = 0; i < count; i++) {
		if (args[i] == NULL || strnlen(args[i], CVM_QEMU_ARG_LEN_MAX) == CVM_QEMU_ARG_LEN_MAX) {
			qemu_errf(err, err_len, "argument %zu is missing or longer than %zu bytes", i,
			          CVM_QEMU_ARG_LEN_MAX);
			return CVM_E_INVAL;
		}
	}
	if (count > 0 &&
	    (strncmp(args[0], "qemu-system-", 12) == 0 || strstr(args[0], "/qemu-system-") != NULL)) {
		qemu_errf(err, err_len, "the arguments start with the program '%.200s': give them without it",
		          args[0]);
		return CVM_E_INVAL;
	}
	r = scan_args(args, count, &s, err, err_len);
	if (r != CVM_OK)
		goto out;
	for (size_t i = 0; i < count && r == CVM_OK; i++) {
		const char *o = opt_name(args[i]);

		if (o == NULL) {
			push(&a, args[i]); /* a disk image: -snapshot covers it */
			continue;
		}
		if (IN(o, flags)) {
			if (!IN(o, dropped_flags))
				pushf(&a, "-%s", o);
			continue;
		}
		r = rewrite_one(&a, o, args[i + 1], i + 1, &s, work_dir, &tpm_count, err, err_len);
		i++;
	}
	if (r != CVM_OK)
		goto out;
	if (s.first_serial == SIZE_MAX && s.console_chardev == NULL) {
		push(&a, "-serial");
		pushf(&a, "file:%s/console.log", work_dir);
	}
	push(&a, "-snapshot");
	push(&a, "-no-reboot");
	push(&a, "-monitor");
	push(&a, "none");
	if (!s.nographic) {
		push(&a, "-display");
		push(&a, "none");
	}
	push(&a, "-kernel");
	push(&a, kernel);
	push(&a, "-initrd");
	push(&a, initrd);
	push(&a, "-append");
	push(&a, PROBE_APPEND);
	r = a.err;
	if (r != CVM_OK) {
		qemu_errf(err, err_len, "cannot build the probe's command line: %s", cvm_strerror(r));
		goto out;
	}
	out->args = a.v;
	out->count = a.n;
	out->tpm_count = tpm_count;
	a.v = NULL; /* transferred */
	a.n = 0;
out:
	for (size_t i = 0; i < a.n; i++)
		free(a.v[i]);
	free(a.v);
	free(s.console_chardev);
	return r;
}
