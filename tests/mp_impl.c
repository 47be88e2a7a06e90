/* The one translation unit of the tests that holds the implementation. */
#define MP_IMPLEMENTATION
#include "../mp.h"
