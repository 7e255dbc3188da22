/* main.c - yun-vmm entry point (being written). */
int main(void)
{
	return 0;
}
