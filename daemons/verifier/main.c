/* cvm-verifierd. Placeholder: the server replaces this file. */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "cvm-verifierd: not implemented yet\n");
	return 1;
}
