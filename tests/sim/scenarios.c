#include "sim/run.h"
const psim_scenario psim_scenarios[] = {{0}};
const int psim_n_scenarios = 0;
