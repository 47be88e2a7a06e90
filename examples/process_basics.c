/* placeholder, replaced by the examples work */
#define MP_IMPLEMENTATION
#include "mp.h"
int main(void) { return 0; }
