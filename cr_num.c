/* Licensed under the Apache License, Version 2.0. */

/* cr_num.c: the tables of cr_num.h's inline writers. */

#include "cr_num.h"

const char cr_num_digit_pairs[200] = {
#define CR_NUM_ROW(t) \
    t, '0', t, '1', t, '2', t, '3', t, '4', \
    t, '5', t, '6', t, '7', t, '8', t, '9'
    CR_NUM_ROW('0'), CR_NUM_ROW('1'), CR_NUM_ROW('2'), CR_NUM_ROW('3'),
    CR_NUM_ROW('4'), CR_NUM_ROW('5'), CR_NUM_ROW('6'), CR_NUM_ROW('7'),
    CR_NUM_ROW('8'), CR_NUM_ROW('9')
#undef CR_NUM_ROW
};

const apr_uint64_t cr_num_powers_of_ten[20] = {
    APR_UINT64_C(1), APR_UINT64_C(10), APR_UINT64_C(100),
    APR_UINT64_C(1000), APR_UINT64_C(10000), APR_UINT64_C(100000),
    APR_UINT64_C(1000000), APR_UINT64_C(10000000),
    APR_UINT64_C(100000000), APR_UINT64_C(1000000000),
    APR_UINT64_C(10000000000), APR_UINT64_C(100000000000),
    APR_UINT64_C(1000000000000), APR_UINT64_C(10000000000000),
    APR_UINT64_C(100000000000000), APR_UINT64_C(1000000000000000),
    APR_UINT64_C(10000000000000000), APR_UINT64_C(100000000000000000),
    APR_UINT64_C(1000000000000000000), APR_UINT64_C(10000000000000000000)
};
