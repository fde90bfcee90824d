#ifndef _INCLUDED_g_stateupdater_codeobject
#define _INCLUDED_g_stateupdater_codeobject

void _run_g_stateupdater_codeobject();


#endif
