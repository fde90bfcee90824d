"""Neuron models, one small class each, with their Brian2 equations and torch step side
by side (base.py says what a model declares and gives):

    dendritic.py  DendriticNeuron (pyramidal, output_pyramidal, interneuron): rate neurons
                  with dendrites and prospective coding
    rate.py       Leaky (rate unit), Product (of two inputs), Input (the schedule's values)
    spiking.py    LIF, CubaLIF, IF, LI (NIR's neurons), PoissonInput
"""
