/* Licensed under the Apache License, Version 2.0. */

#include "mod_clawdrouter.h"
