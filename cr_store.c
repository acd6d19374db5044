/* Licensed under the Apache License, Version 2.0. */

#include "cr_store.h"
