/* libFuzzer harness for the IMA list reader, replay and sig decoder, and
 * for the reference-set parser: whatever the input, every call returns
 * cleanly, binary entries' views lie inside the input, decoded sizes keep
 * their caps, and a replay never counts more entries than were read. */
#include <stddef.h>
#include <stdint.h>

#include <cvmkit/crypto.h>
#include <cvmkit/ima.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_view(const struct cvm_rd *v, const uint8_t *data, size_t size)
{
	uintptr_t lo = (uintptr_t)data, p = (uintptr_t)v->p;

	if (v->len == 0)
		return;
	if (p < lo || v->len > size || p - lo > size - v->len)
		__builtin_trap();
}

static void check_entry(const struct cvm_ima_entry *e, const uint8_t *data, size_t size, bool binary)
{
	struct cvm_ima_sig sig;

	if (e->pcr >= CVM_IMA_PCR_COUNT || e->field_count > CVM_IMA_FIELDS_MAX ||
	    e->template_name.len > CVM_IMA_TEMPLATE_NAME_MAX ||
	    e->template_data.len > CVM_IMA_TEMPLATE_DATA_MAX || e->digest.len > CVM_IMA_FILE_DIGEST_MAX ||
	    e->name.len >= CVM_IMA_EVENT_NAME_MAX || e->sig.len > CVM_IMA_EVENT_DATA_MAX)
		__builtin_trap();
	if (e->digest_alg != 0 && cvm_digest_len(e->digest_alg) != e->digest.len)
		__builtin_trap();
	if (binary) {
		check_view(&e->template_name, data, size);
		check_view(&e->template_data, data, size);
		check_view(&e->digest, data, size);
		check_view(&e->name, data, size);
		check_view(&e->sig, data, size);
		check_view(&e->buf, data, size);
		check_view(&e->modsig, data, size);
	}
	if (e->sig.len != 0 && cvm_ima_sig_parse(e->sig, &sig) == CVM_OK && sig.value.len + 9 != e->sig.len)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint16_t banks[] = {CVM_DIGEST_SHA1, CVM_DIGEST_SHA256};
	struct cvm_ima_reader *rd = NULL;
	struct cvm_ima_replay *rp = NULL;
	struct cvm_ima_refset *set = NULL;
	struct cvm_ima_entry e;
	uint64_t read = 0;
	size_t bad_line;
	bool has = true;

	if (cvm_ima_reader_new_mem(data, size, CVM_IMA_FORMAT_AUTO, &rd) != CVM_OK ||
	    cvm_ima_replay_new(banks, 2, &rp) != CVM_OK)
		goto out;
	while (has) {
		if (cvm_ima_reader_next(rd, &e, &has) != CVM_OK) {
			if (cvm_ima_reader_err(rd)[0] == '\0')
				__builtin_trap(); /* every failure is explained */
			break;
		}
		if (!has)
			break;
		read++;
		check_entry(&e, data, size, cvm_ima_reader_format(rd) == CVM_IMA_FORMAT_BINARY);
		if (cvm_ima_replay_extend(rp, &e) != CVM_OK)
			continue;
		if (set != NULL)
			(void)cvm_ima_refset_check(set, &e);
	}
	if (cvm_ima_replay_entries(rp) > read || cvm_ima_reader_count(rd) != read)
		__builtin_trap();
	if (cvm_ima_refset_parse(data, size, &set, &bad_line) == CVM_OK && cvm_ima_refset_count(set) > size)
		__builtin_trap();
out:
	cvm_ima_refset_free(set);
	cvm_ima_replay_free(rp);
	cvm_ima_reader_free(rd);
	return 0;
}
