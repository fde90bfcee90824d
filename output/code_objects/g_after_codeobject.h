#ifndef _INCLUDED_g_after_codeobject
#define _INCLUDED_g_after_codeobject

void _run_g_after_codeobject();


#endif
