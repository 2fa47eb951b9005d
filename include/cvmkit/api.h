/* cvmkit's declaration markers, included by every public header.
 *
 * CVM_API marks what the shared library exports: libcvmkit is built with
 * -fvisibility=hidden, so a function or object that no header in
 * include/cvmkit/ declares with CVM_API stays inside the library
 * (scripts/check-exports.sh compares `nm -D` with these declarations).
 * CVM_MUST_CHECK marks functions whose result is an error code. */
#ifndef CVMKIT_API_H
#define CVMKIT_API_H

#define CVM_API __attribute__((visibility("default")))
#define CVM_MUST_CHECK __attribute__((warn_unused_result))

#endif
