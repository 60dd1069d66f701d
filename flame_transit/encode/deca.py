"""placeholder"""
class DecaEncoder: pass
def deca_crop(): pass
