/* Licensed under the Apache License, Version 2.0. */
#include "mod_clawdrouter.h"
AP_DECLARE_MODULE(clawdrouter) = {
    STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, NULL, NULL,
    AP_MODULE_FLAG_NONE
};
