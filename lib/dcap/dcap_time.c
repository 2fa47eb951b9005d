/* ISO 8601 timestamps as Intel's collateral writes them, to Unix seconds,
 * computed from the civil date so that neither TZ nor timegm matters. */
#include <cvmkit/bytes.h>
#include <cvmkit/dcap.h>

/* rd_digits reads exactly `n` decimal digits. */
static bool rd_digits(struct cvm_rd *r, unsigned n, unsigned *out)
{
	unsigned v = 0;
	uint8_t c;

	for (unsigned i = 0; i < n; i++) {
		if (!cvm_rd_u8(r, &c) || c < '0' || c > '9')
			return false;
		v = v * 10 + (unsigned)(c - '0');
	}
	*out = v;
	return true;
}

static bool rd_char(struct cvm_rd *r, uint8_t want)
{
	uint8_t c;

	return cvm_rd_u8(r, &c) && c == want;
}

static bool is_leap(unsigned y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
	static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (m == 2 && is_leap(y))
		return 29;
	return mdays[m - 1];
}

/* days_from_civil counts days from 1970-01-01 to y-m-d in the proleptic
 * Gregorian calendar (H. Hinnant's algorithm, eras of 400 years). */
static int64_t days_from_civil(unsigned year, unsigned month, unsigned day)
{
	int64_t y = (int64_t)year - (month <= 2 ? 1 : 0);
	int64_t m = (int64_t)month;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + (int64_t)day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

bool cvm_iso8601_parse(const char *s, size_t len, int64_t *out)
{
	unsigned year, mon, day, hh, mm, ss, oh = 0, om = 0;
	int64_t t, offset = 0;
	struct cvm_rd r;
	uint8_t c;

	*out = 0;
	if (s == NULL)
		return false;
	cvm_rd_init(&r, s, len);
	if (!rd_digits(&r, 4, &year) || !rd_char(&r, '-') || !rd_digits(&r, 2, &mon) || !rd_char(&r, '-') ||
	    !rd_digits(&r, 2, &day) || !rd_char(&r, 'T') || !rd_digits(&r, 2, &hh) || !rd_char(&r, ':') ||
	    !rd_digits(&r, 2, &mm) || !rd_char(&r, ':') || !rd_digits(&r, 2, &ss))
		return false;
	if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hh > 23 || mm > 59 || ss > 59)
		return false;
	if (!cvm_rd_u8(&r, &c))
		return false;
	if (c == '.') {
		/* fractional seconds: 1 to 9 digits, truncated */
		unsigned digits = 0;

		while (cvm_rd_peek_u8(&r, &c) && c >= '0' && c <= '9') {
			(void)cvm_rd_skip(&r, 1);
			digits++;
		}
		if (digits < 1 || digits > 9 || !cvm_rd_u8(&r, &c))
			return false;
	}
	if (c == '+' || c == '-') {
		if (!rd_digits(&r, 2, &oh) || !rd_char(&r, ':') || !rd_digits(&r, 2, &om))
			return false;
		if (oh > 23 || om > 59)
			return false;
		offset = (int64_t)oh * 3600 + (int64_t)om * 60;
		if (c == '-')
			offset = -offset;
	} else if (c != 'Z') {
		return false;
	}
	if (!cvm_rd_empty(&r))
		return false;
	t = days_from_civil(year, mon, day) * 86400 + (int64_t)hh * 3600 + (int64_t)mm * 60 + (int64_t)ss;
	/* local time = UTC + offset */
	*out = t - offset;
	return true;
}
