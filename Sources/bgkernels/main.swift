import BGKernels
print(Machine.instructionSet)
