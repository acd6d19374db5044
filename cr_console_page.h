/* Licensed under the Apache License, Version 2.0. */

/* cr_console_page.h: the console's pages (HTML, CSS, JS, messages in
 * Chinese and English), httpd-independent. */
#ifndef CR_CONSOLE_PAGE_H
#define CR_CONSOLE_PAGE_H

#include <apr_pools.h>

#endif /* CR_CONSOLE_PAGE_H */
