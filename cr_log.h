/* Licensed under the Apache License, Version 2.0. */

/*
 * cr_log.h: the project's log tags.
 *
 * Every error-log line the module writes starts with a tag of its own,
 * CRnnnn, in the spirit of httpd's APLOGNO(nnnnn), so that operators and
 * the tests can match a message without depending on its wording.
 * Numbers are never reused; docs/LOGTAGS.md lists them.
 *   0001-0099 configuration, 0100-0199 gateway requests,
 *   0200-0299 rate stores, 0300-0399 console.
 */
#ifndef CR_LOG_H
#define CR_LOG_H

#define CRLOGNO(n) "CR" #n ": "

#endif /* CR_LOG_H */
