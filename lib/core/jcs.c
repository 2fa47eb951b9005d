/* RFC 8785 (JCS) strings: the one encoder of the JSON text dstack hashes
 * (version-2 runtime events in lib/eventlog, MrConfigV3 documents in
 * lib/app). */
#include <cvmkit/bytes.h>

#include "core_lib.h"

void cvm_jcs_string(struct cvm_wr *w, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";

	cvm_wr_u8(w, '"');
	for (size_t i = 0; i < len; i++) {
		uint8_t c = (uint8_t)s[i];

		switch (c) {
		case '"':
			cvm_wr_str(w, "\\\"");
			break;
		case '\\':
			cvm_wr_str(w, "\\\\");
			break;
		case '\b':
			cvm_wr_str(w, "\\b");
			break;
		case '\f':
			cvm_wr_str(w, "\\f");
			break;
		case '\n':
			cvm_wr_str(w, "\\n");
			break;
		case '\r':
			cvm_wr_str(w, "\\r");
			break;
		case '\t':
			cvm_wr_str(w, "\\t");
			break;
		default:
			if (c < 0x20) {
				cvm_wr_str(w, "\\u00");
				cvm_wr_u8(w, (uint8_t)hex[c >> 4]);
				cvm_wr_u8(w, (uint8_t)hex[c & 15]);
			} else {
				cvm_wr_u8(w, c);
			}
		}
	}
	cvm_wr_u8(w, '"');
}
