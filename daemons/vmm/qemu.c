/* QEMU command lines (dstack spec §8.4): a pure function from the VM
 * record, the daemon's configuration and the image's metadata to argv. It
 * reads no file and starts nothing, so the unit tests check every line.
 *
 * dev: q35 under KVM when usable, else TCG; OVMF; a swtpm vTPM (tpm-crb).
 * tdx: KVM, tdx-guest object (MRCONFIGID, quote generation over vsock),
 *      split irqchip, vhost-vsock with the VM's CID.
 * snp: KVM, sev-snp-guest (policy, kernel hashes, HOST_DATA) over a memfd
 *      memory backend; virtio devices without legacy and behind the IOMMU.
 * Every platform: -no-reboot, QMP and the serial log in the work dir, the
 * host-shared folder read-only over 9p (tag host-shared), the qcow2 data
 * disk, user networking with hostfwd, and the host channel: a
 * virtio-serial port (org.cvmkit.host.0) whose host end is guest.sock. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <cvmkit/encoding.h>

#include "vmm.h"

void vmm_argv_cleanup(struct vmm_argv *a)
{
	for (size_t i = 0; i < a->count; i++)
		free(a->v[i]);
	free(a->v);
	memset(a, 0, sizeof(*a));
}

static void add(struct vmm_argv *a, const char *s)
{
	char **nv;
	char *d;

	if (a->err)
		return;
	if (a->count + 2 > a->cap) {
		size_t cap = a->cap == 0 ? 64 : a->cap * 2;

		nv = reallocarray(a->v, cap, sizeof(*nv));
		if (nv == NULL) {
			a->err = true;
			return;
		}
		a->v = nv;
		a->cap = cap;
	}
	d = strdup(s);
	if (d == NULL) {
		a->err = true;
		return;
	}
	a->v[a->count++] = d;
	a->v[a->count] = NULL;
}

/* optf adds `opt` and the formatted value. */
static void __attribute__((format(printf, 3, 4)))
optf(struct vmm_argv *a, const char *opt, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		a->err = true;
		return;
	}
	add(a, opt);
	add(a, buf);
}

static void add2(struct vmm_argv *a, const char *opt, const char *val)
{
	add(a, opt);
	add(a, val);
}

/* hostfwd lists the VM's port mappings for -netdev user. */
static int hostfwd(const struct vmm_launch *l, char *out, size_t cap)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < l->vm->spec.port_count; i++) {
		const struct vmm_port *p = &l->vm->spec.ports[i];
		const char *addr = p->host_address[0] != '\0' ? p->host_address : l->conf->host_address;
		int n = snprintf(out + used, cap - used, ",hostfwd=%s:%s:%u-:%u", p->protocol, addr,
		                 (unsigned)p->host_port, (unsigned)p->vm_port);

		if (n < 0 || (size_t)n >= cap - used)
			return CVM_E_TOO_LARGE;
		used += (size_t)n;
	}
	return CVM_OK;
}

static int tdx_object(const struct vmm_launch *l, struct vmm_argv *a)
{
	char *b64 = cvm_base64_encode_new(l->mrconfigid, sizeof(l->mrconfigid)), *text;
	char port[16];
	json_t *o;

	if (b64 == NULL)
		return CVM_E_NOMEM;
	(void)snprintf(port, sizeof(port), "%u", (unsigned)l->conf->qgs_port);
	o = json_pack("{s:s,s:s,s:s,s:{s:s,s:s,s:s}}", "qom-type", "tdx-guest", "id", "tdx", "mrconfigid",
	              b64, "quote-generation-socket", "type", "vsock", "cid", "2", "port", port);
	free(b64);
	if (o == NULL)
		return CVM_E_NOMEM;
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (text == NULL)
		return CVM_E_NOMEM;
	add2(a, "-object", text);
	free(text);
	return CVM_OK;
}

int vmm_qemu_argv(const struct vmm_launch *l, struct vmm_argv *a)
{
	const struct vmm_conf *c = l->conf;
	const struct vmm_vm *vm = l->vm;
	const struct vmm_image *img = l->image;
	enum vmm_platform p = c->platform;
	const char *vdev = p == VMM_PLATFORM_SNP ? ",disable-legacy=on,iommu_platform=true" : "";
	const char *bios = p == VMM_PLATFORM_SNP && img->bios_sev[0] != '\0' ? img->bios_sev : img->bios;
	char fwd[VMM_PORTS_MAX * 64];
	const char *w = l->work_dir;
	int r;

	memset(a, 0, sizeof(*a));
	if (vm->spec.vcpu == 0 || vm->spec.memory_mb == 0 || w[0] != '/' || strchr(w, ',') != NULL)
		return CVM_E_INVAL;
	r = hostfwd(l, fwd, sizeof(fwd));
	if (r != CVM_OK)
		return r;
	add(a, c->qemu);
	add2(a, "-name", vm->name);
	if (p == VMM_PLATFORM_DEV) {
		optf(a, "-machine", "q35,accel=%s,smm=off", l->kvm ? "kvm" : "tcg");
		if (l->kvm)
			add2(a, "-cpu", "host");
	} else if (p == VMM_PLATFORM_TDX) {
		add2(a, "-accel", "kvm");
		add2(a, "-cpu", "host");
		add2(a, "-machine", "q35,kernel-irqchip=split,confidential-guest-support=tdx,hpet=off");
		r = tdx_object(l, a);
		if (r != CVM_OK)
			goto out;
	} else {
		char *hd = cvm_base64_encode_new(l->host_data, sizeof(l->host_data));

		if (hd == NULL) {
			r = CVM_E_NOMEM;
			goto out;
		}
		add2(a, "-accel", "kvm");
		add2(a, "-cpu", "EPYC-v4");
		add2(a, "-machine", "q35,confidential-guest-support=sev0,memory-backend=ram1");
		optf(a, "-object", "memory-backend-memfd,id=ram1,size=%uM,share=true,prealloc=false",
		     (unsigned)vm->spec.memory_mb);
		optf(a, "-object",
		     "sev-snp-guest,id=sev0,policy=0x30000,cbitpos=51,reduced-phys-bits=1,kernel-hashes=on,"
		     "host-data=%s",
		     hd);
		free(hd);
	}
	optf(a, "-smp", "%u", (unsigned)vm->spec.vcpu);
	optf(a, "-m", "%uM", (unsigned)vm->spec.memory_mb);
	add(a, "-nodefaults");
	add(a, "-no-user-config");
	/* a guest that reboots (a panic, a failed boot) ends its QEMU: a TD
	 * cannot reboot anyway, and the daemon then reports why from the
	 * serial log (proc.c) instead of a VM looping through boots */
	add(a, "-no-reboot");
	add2(a, "-display", "none");
	optf(a, "-chardev", "file,id=serial0,path=%s/serial.log,append=on", w);
	add2(a, "-serial", "chardev:serial0");
	optf(a, "-qmp", "unix:%s/qmp.sock,server=on,wait=off", w);
	optf(a, "-pidfile", "%s/qemu.pid", w);
	add(a, "-daemonize");
	if (c->start_paused)
		add(a, "-S");
	if (bios[0] != '\0')
		add2(a, "-bios", bios);
	if (img->kernel[0] != '\0') {
		add2(a, "-kernel", img->kernel);
		if (img->initrd[0] != '\0')
			add2(a, "-initrd", img->initrd);
		if (img->cmdline[0] != '\0')
			add2(a, "-append", img->cmdline);
	}
	if (img->rootfs[0] != '\0') {
		optf(a, "-drive", "file=%s,if=none,id=hd0,format=raw,readonly=on", img->rootfs);
		optf(a, "-device", "virtio-blk-pci,drive=hd0%s", vdev);
	}
	optf(a, "-drive", "file=%s/hda.img,if=none,id=hd1,format=qcow2", w);
	optf(a, "-device", "virtio-blk-pci,drive=hd1%s", vdev);
	optf(a, "-netdev", "user,id=net0%s", fwd);
	optf(a, "-device", "virtio-net-pci,netdev=net0%s", vdev);
	optf(a, "-virtfs",
	     "local,path=%s/shared,mount_tag=host-shared,readonly=on,security_model=mapped,id=virtfs0", w);
	if (p == VMM_PLATFORM_DEV) {
		/* the vTPM (swtpm, started per VM) */
		optf(a, "-chardev", "socket,id=chrtpm,path=%s/swtpm.sock", w);
		add2(a, "-tpmdev", "emulator,id=tpm0,chardev=chrtpm");
		add2(a, "-device", "tpm-crb,tpmdev=tpm0");
	} else {
		/* vsock: the TD's quote generation (QGS) and dstack's guest tools */
		optf(a, "-device", "vhost-vsock-pci,guest-cid=%u%s", (unsigned)vm->cid, vdev);
	}
	/* The host channel on every platform: a virtio-serial port whose host
	 * end is the work dir's guest.sock. The socket's path, not anything the
	 * guest says (a vsock CID), tells the daemon which VM speaks. */
	optf(a, "-device", "virtio-serial-pci%s", vdev);
	optf(a, "-chardev", "socket,id=vmm0,path=%s/guest.sock,server=on,wait=off", w);
	add2(a, "-device", "virtserialport,chardev=vmm0,name=org.cvmkit.host.0");
	r = a->err ? CVM_E_NOMEM : CVM_OK;
out:
	if (r != CVM_OK)
		vmm_argv_cleanup(a);
	return r;
}
