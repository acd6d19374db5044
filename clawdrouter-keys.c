/* Licensed under the Apache License, Version 2.0. */
int main(void) { return 0; }
