#include "platoon/error.h"

const char *pt_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define PT_ERROR_CASE(name, value, text) \
    case name:                           \
        return text;
        PT_ERROR_TABLE(PT_ERROR_CASE)
#undef PT_ERROR_CASE
    default:
        return "unknown error";
    }
}

const char *pt_error_name(int code)
{
    switch (code) {
    case 0:
        return "PT_OK";
#define PT_ERROR_CASE(name, value, text) \
    case name:                           \
        return #name;
        PT_ERROR_TABLE(PT_ERROR_CASE)
#undef PT_ERROR_CASE
    default:
        return "PT_E?";
    }
}
