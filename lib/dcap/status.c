/* Intel's TCB status names. */
#include <string.h>

#include <cvmkit/dcap.h>

static const char *const status_names[CVM_TCB_STATUS_COUNT] = {
    [CVM_TCB_NONE] = "None",
    [CVM_TCB_UP_TO_DATE] = "UpToDate",
    [CVM_TCB_SW_HARDENING_NEEDED] = "SWHardeningNeeded",
    [CVM_TCB_CONFIGURATION_NEEDED] = "ConfigurationNeeded",
    [CVM_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED] = "ConfigurationAndSWHardeningNeeded",
    [CVM_TCB_OUT_OF_DATE] = "OutOfDate",
    [CVM_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED] = "OutOfDateConfigurationNeeded",
    [CVM_TCB_REVOKED] = "Revoked",
    [CVM_TCB_TD_RELAUNCH_ADVISED] = "TDRelaunchAdvised",
    [CVM_TCB_TD_RELAUNCH_ADVISED_CONFIGURATION_NEEDED] = "TDRelaunchAdvisedConfigurationNeeded",
};

const char *cvm_tcb_status_name(enum cvm_tcb_status s)
{
	if ((unsigned)s >= CVM_TCB_STATUS_COUNT)
		return status_names[CVM_TCB_NONE];
	return status_names[s];
}

bool cvm_tcb_status_parse(const char *name, size_t len, enum cvm_tcb_status *out)
{
	*out = CVM_TCB_NONE;
	if (name == NULL)
		return false;
	/* "None" is ours, not Intel's: it never appears in collateral */
	for (unsigned s = CVM_TCB_NONE + 1; s < CVM_TCB_STATUS_COUNT; s++) {
		if (strlen(status_names[s]) == len && memcmp(status_names[s], name, len) == 0) {
			*out = (enum cvm_tcb_status)s;
			return true;
		}
	}
	return false;
}
